// The whole stack for a test file, started for real: a throwaway redis-server, the Upstash REST
// bridge in front of it, and the Worker (built once by global-setup.ts) running in workerd through
// wrangler's test harness. `stop()` tears all of it down.

import type Redis from "ioredis";
import { createTestHarness, type TestHarness } from "wrangler";
import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { createKeys, type Keys } from "../../shared/keys.ts";
import { WORKER_BUILD_DIR } from "../global-setup.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

export const API_TOKEN = "test-api-token";
const BRIDGE_TOKEN = "test-bridge-token";

export interface Stack {
  /** The Worker's base URL (real HTTP into workerd). */
  url: string;
  redisServer: RedisServer;
  /** A TCP client on the same Redis, for asserting what was (not) written. */
  redis: Redis;
  bridge: Bridge;
  harness: TestHarness;
  keys: Keys;
  /** fetch against the Worker with the API token (override headers to break it). */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** POST JSON to the Worker with the API token. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

export interface StackOptions {
  /** Worker variables on top of the defaults (strings, as wrangler vars are). */
  vars?: Record<string, string>;
  keyPrefix?: string;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const redisServer = await startRedisServer();
  const bridge = await startBridge({ redisUrl: redisServer.url, token: BRIDGE_TOKEN, port: 0 });
  const keyPrefix = options.keyPrefix ?? "sh:v1";
  const harness = createTestHarness({
    root: `${import.meta.dirname}/../..`,
    workers: [
      {
        configPath: "wrangler.toml",
        prebuiltWorkerDir: WORKER_BUILD_DIR,
        vars: { KEY_PREFIX: keyPrefix, ...options.vars },
        secrets: {
          UPSTASH_REDIS_REST_URL: bridge.url,
          UPSTASH_REDIS_REST_TOKEN: BRIDGE_TOKEN,
          API_TOKEN,
        },
      },
    ],
  });
  const { url } = await harness.listen();
  const base = url.href.replace(/\/$/, "");

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${API_TOKEN}`,
        ...(init.headers as Record<string, string>),
      },
    });

  return {
    url: base,
    redisServer,
    redis: redisServer.client,
    bridge,
    harness,
    keys: createKeys(keyPrefix),
    api,
    post: (path, body, headers = {}) =>
      api(path, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      }),
    async stop() {
      await harness.close();
      await bridge.close();
      await redisServer.stop();
    },
  };
}
