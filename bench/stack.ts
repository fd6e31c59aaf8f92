// The benchmark's own stack, started for real and stopped at the end: a throwaway redis-server,
// the REST bridge (on its own thread), the Worker in workerd twice (with the publish kick, as in
// production, and without, so delivery runs can be driven pass by pass), and the receivers.

import { Worker } from "node:worker_threads";
import { Redis as UpstashRedis } from "@upstash/redis";
import type { Redis } from "ioredis";
import { createTestHarness, type TestHarness } from "wrangler";
import { createKeys, type Keys } from "../shared/keys.ts";
import setup, { WORKER_BUILD_DIR } from "../test/global-setup.ts";
import { startRedisServer } from "../test/helpers/redis-server.ts";
import { type Receivers, startReceivers } from "./receivers.ts";

export const API_TOKEN = "bench-api-token";
const BRIDGE_TOKEN = "bench-bridge-token";

export interface Api {
  base: string;
  call(method: string, path: string, body?: unknown): Promise<Response>;
  json<T>(method: string, path: string, body?: unknown): Promise<T>;
}

export interface BenchStack {
  redis: Redis;
  bridgeUrl: string;
  /** @upstash/redis on the same bridge: what the baselines use. */
  rest: UpstashRedis;
  keys: Keys;
  /** The Worker as deployed: a publish kicks delivery. */
  kicked: Api;
  /** The same Worker without the kick: delivery happens only in the passes the bench runs. */
  manual: Api;
  receivers: Receivers;
  bridgeStats(): Promise<{ requests: number; commands: number }>;
  stop(): Promise<void>;
}

function api(base: string): Api {
  const call = (method: string, path: string, body?: unknown) =>
    fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${API_TOKEN}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  return {
    base,
    call,
    async json<T>(method: string, path: string, body?: unknown) {
      const res = await call(method, path, body);
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    },
  };
}

async function startWorker(bridgeUrl: string, vars: Record<string, string>) {
  const harness: TestHarness = createTestHarness({
    root: `${import.meta.dirname}/..`,
    workers: [
      {
        configPath: "wrangler.toml",
        prebuiltWorkerDir: WORKER_BUILD_DIR,
        vars,
        secrets: {
          UPSTASH_REDIS_REST_URL: bridgeUrl,
          UPSTASH_REDIS_REST_TOKEN: BRIDGE_TOKEN,
          API_TOKEN,
        },
      },
    ],
  });
  const { url } = await harness.listen();
  return { harness, api: api(url.href.replace(/\/$/, "")) };
}

export async function startBenchStack(vars: Record<string, string> = {}): Promise<BenchStack> {
  setup(); // builds the Worker as `wrangler deploy` would
  const redisServer = await startRedisServer();
  const bridge = new Worker(new URL("./bridge-thread.ts", import.meta.url), {
    workerData: { redisUrl: redisServer.url, token: BRIDGE_TOKEN },
  });
  const pending = new Map<string, (value: unknown) => void>();
  bridge.on("message", (message: { type: string }) => pending.get(message.type)?.(message));
  const ask = <T>(type: string, send: string | null) =>
    new Promise<T>((resolve) => {
      pending.set(type, resolve as (value: unknown) => void);
      if (send) bridge.postMessage(send);
    });
  const { url: bridgeUrl } = await ask<{ url: string }>("ready", null);

  const kicked = await startWorker(bridgeUrl, vars);
  const manual = await startWorker(bridgeUrl, { ...vars, KICK_ON_PUBLISH: "false" });
  const receivers = await startReceivers();
  // Configured like the Worker's own client (shared/redis.ts), so the reference pass differs
  // from streamhook's in its design only, not in client settings.
  const rest = new UpstashRedis({
    url: bridgeUrl,
    token: BRIDGE_TOKEN,
    automaticDeserialization: false,
    responseEncoding: false,
    enableTelemetry: false,
  });
  return {
    redis: redisServer.client,
    bridgeUrl,
    rest,
    keys: createKeys("sh:v1"),
    kicked: kicked.api,
    manual: manual.api,
    receivers,
    bridgeStats: () => ask("stats", "stats"),
    async stop() {
      await receivers.close();
      await kicked.harness.close();
      await manual.harness.close();
      await ask("closed", "close");
      await bridge.terminate();
      await redisServer.stop();
    },
  };
}
