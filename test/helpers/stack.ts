// The whole stack for a test file, started for real: a throwaway redis-server, the Upstash REST
// bridge in front of it, and the Worker (built once by global-setup.ts) running in workerd through
// wrangler's test harness. `stop()` tears all of it down.

import type Redis from "ioredis";
import { createTestHarness, type TestHarness } from "wrangler";
import { type Bridge, type BridgeOptions, startBridge } from "../../dev/bridge.ts";
import { createKeys, type Keys } from "../../shared/keys.ts";
import { NO_QUEUE_CONFIG, WORKER_BUILD_DIR } from "../global-setup.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

export const API_TOKEN = "test-api-token";
export const BRIDGE_TOKEN = "test-bridge-token";

export interface Stack {
  /** The Worker's base URL (real HTTP into workerd). */
  url: string;
  redisServer: RedisServer;
  /** A TCP client on the same Redis, for asserting what was (not) written. */
  redis: Redis;
  bridge: Bridge;
  harness: TestHarness;
  keys: Keys;
  /** Kills the Worker (whatever it was doing) and starts a fresh one on the same Redis. */
  restartWorker(): Promise<void>;
  /** fetch against the Worker with the API token (override headers to break it). */
  api(path: string, init?: RequestInit): Promise<Response>;
  /** POST JSON to the Worker with the API token. */
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  stop(): Promise<void>;
}

/**
 * Receivers in tests are http://127.0.0.1, so stacks accept such targets, as `npm run dev` does;
 * pass `vars: { ALLOW_PRIVATE_WEBHOOKS: "0" }` (or the HTTP one) for production's refusals.
 */
export const DEV_WEBHOOK_TARGETS = { ALLOW_HTTP_WEBHOOKS: "1", ALLOW_PRIVATE_WEBHOOKS: "1" };

export interface StackOptions {
  /** Worker variables on top of the defaults (strings, as wrangler vars are). */
  vars?: Record<string, string>;
  keyPrefix?: string;
  /** The bridge's limits and faults (Upstash's limits by default). */
  bridge?: Omit<BridgeOptions, "redisUrl" | "token" | "port">;
  /**
   * Bind the delivery queue (wrangler.toml as deployed). Off by default: delivery then happens
   * only in the kicks and passes a test causes, and in nothing running behind its back.
   */
  queue?: boolean;
}

// wrangler's test harness makes the Worker's outbound requests (to the bridge, to webhooks) from
// this process, through globalThis.fetch(url, request), with no abort signal: a Worker killed by
// restartWorker() would leave them running, and a receiver would still answer them as if the
// Worker had heard. So those requests get the signal of the Worker that made them, and killing
// the Worker aborts them, as a dead process drops its connections.
//
// They are also made with redirect "manual". The harness's request has fetch's default, "follow",
// so Node would follow a 3xx itself and hand workerd the target's answer: a Worker that asked for
// "manual" (deliver.ts does) would take a 303's GET's 204 for the webhook's answer. workerd
// follows redirects itself when the Worker asks it to, so this hop must not.
let workerGeneration = new AbortController();
const plainFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  if (!isHarnessRequest(init)) return plainFetch(input, init);
  const signal = AbortSignal.any([workerGeneration.signal, init.signal]);
  const { method, headers, body } = init;
  // duplex: Node's fetch needs it to send a stream body; the DOM types do not know it yet.
  const outbound: RequestInit & { duplex: "half" } = {
    method,
    headers,
    body,
    signal,
    redirect: "manual",
    duplex: "half",
  };
  return plainFetch(input, outbound);
};

// The harness's request is a Request of miniflare's own undici, so `instanceof Request` is false
// for it: it is recognised by its shape.
function isHarnessRequest(init: unknown): init is Request {
  return typeof init === "object" && init !== null && "url" in init && "redirect" in init;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const redisServer = await startRedisServer();
  const bridge = await startBridge({
    ...options.bridge,
    redisUrl: redisServer.url,
    token: BRIDGE_TOKEN,
    port: 0,
  });
  const keyPrefix = options.keyPrefix ?? "sh:v1";
  const startWorker = async () => {
    const config = options.queue ? "wrangler.toml" : NO_QUEUE_CONFIG;
    const harness = createWorker(bridge, keyPrefix, options.vars ?? {}, config);
    const { url } = await harness.listen();
    return { harness, base: url.href.replace(/\/$/, "") };
  };
  let worker = await startWorker();

  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${worker.base}${path}`, {
      ...init,
      headers: {
        authorization: `Bearer ${API_TOKEN}`,
        ...(init.headers as Record<string, string>),
      },
    });

  const stack: Stack = {
    get url() {
      return worker.base;
    },
    get harness() {
      return worker.harness;
    },
    redisServer,
    redis: redisServer.client,
    bridge,
    keys: createKeys(keyPrefix),
    api,
    // No body (undefined): no content type either, as `curl -X POST` sends it.
    post: (path, body, headers = {}) =>
      api(path, {
        method: "POST",
        headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
    async restartWorker() {
      // Aborted before the kill and renewed only after it: whatever the dying Worker still sends
      // (a write after its aborted POST failed) is cut too, as it would be from a dead process.
      workerGeneration.abort(new Error("the Worker was killed"));
      await worker.harness.close();
      workerGeneration = new AbortController();
      worker = await startWorker();
    },
    async stop() {
      await worker.harness.close();
      await bridge.close();
      await redisServer.stop();
    },
  };
  return stack;
}

function createWorker(
  bridge: Bridge,
  keyPrefix: string,
  vars: Record<string, string>,
  configPath: string,
) {
  return createTestHarness({
    root: `${import.meta.dirname}/../..`,
    workers: [
      {
        configPath,
        prebuiltWorkerDir: WORKER_BUILD_DIR,
        vars: { KEY_PREFIX: keyPrefix, ...DEV_WEBHOOK_TARGETS, ...vars },
        secrets: {
          UPSTASH_REDIS_REST_URL: bridge.url,
          UPSTASH_REDIS_REST_TOKEN: BRIDGE_TOKEN,
          API_TOKEN,
        },
      },
    ],
  });
}
