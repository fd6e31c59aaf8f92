// The benchmark's own stack, started for real and stopped at the end: a throwaway redis-server,
// the REST bridge (on its own thread), the Worker twice under `wrangler dev` (as `npm run dev`
// runs it: workerd fetches Redis and the webhooks itself, as in production; the test harness
// would route every subrequest through this process instead), and the receivers:
//
//   kicked   as deployed (wrangler.toml): a publish kicks delivery, and the delivery queue is
//            bound (its consumer runs in the same workerd, through Miniflare's local broker)
//   manual   no kick and no queue, so delivery runs can be driven pass by pass
//
// and, started when a scenario first asks for it, a third `wrangler dev` with the pull scenario's
// reference Worker (bench/reference-worker/): the same workerd, bridge URL and token.

import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { Worker } from "node:worker_threads";
import { Redis as UpstashRedis } from "@upstash/redis";
import type { Redis } from "ioredis";
import { createKeys, type Keys } from "../shared/keys.ts";
import setup, { NO_QUEUE_CONFIG, WORKER_BUILD_DIR } from "../test/global-setup.ts";
import { freePort, startRedisServer } from "../test/helpers/redis-server.ts";
import { workerdPid } from "./cpu.ts";
import { type QueueOps, queueOpsCounter } from "./queue-ops.ts";
import { type Receivers, startReceivers } from "./receivers.ts";

const WORKER_LOG = process.env.BENCH_WORKER_LOG;

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
  /** The Worker as deployed: a publish kicks delivery, and the delivery queue is bound. */
  kicked: Api;
  /** The kicked Worker's cron trigger (the cron does not fire by itself here). */
  cron(): Promise<void>;
  /** The kicked Worker's queue operations so far. */
  queueOps(): QueueOps;
  /** The same Worker without kick or queue: delivery happens only in the passes the bench runs. */
  manual: Api;
  /** The pull scenario's reference Worker (bench/reference-worker/), started on first call. */
  referenceWorker(): Promise<Api>;
  /** The pid of the workerd process that runs that Worker (bench/cpu.ts). */
  workerdPid(worker: "kicked" | "manual"): number;
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

const ROOT = `${import.meta.dirname}/..`;

interface DevWorker {
  api: Api;
  process: ChildProcess;
  port: number;
}

/** `wrangler dev` on a free port, with this process' Node (wrangler refuses Node 20). */
async function startWorker(
  bridgeUrl: string,
  vars: Record<string, string>,
  configPath: string,
  onLine: (line: string) => void,
): Promise<DevWorker> {
  const port = await freePort();
  const all = {
    // The receivers are http://127.0.0.1, as in `npm run dev`.
    ALLOW_HTTP_WEBHOOKS: "1",
    ALLOW_PRIVATE_WEBHOOKS: "1",
    ...vars,
    UPSTASH_REDIS_REST_URL: bridgeUrl,
    UPSTASH_REDIS_REST_TOKEN: BRIDGE_TOKEN,
    API_TOKEN,
  };
  const child = spawn(
    process.execPath,
    [
      `${ROOT}/node_modules/wrangler/bin/wrangler.js`,
      "dev",
      "--config",
      configPath,
      "--ip",
      "127.0.0.1",
      "--port",
      String(port),
      "--inspector-port",
      String(await freePort()),
      "--show-interactive-dev-session=false",
      "--log-level",
      "info",
      ...Object.entries(all).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
    ],
    {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_HIDE_BANNER: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const recent: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on("line", (line) => {
      recent.push(line);
      if (recent.length > 50) recent.shift();
      // BENCH_WORKER_LOG=<file> keeps every line of the Workers' logs, with the time, to study a run.
      if (WORKER_LOG) appendFileSync(WORKER_LOG, `${new Date().toISOString()} ${port} ${line}\n`);
      onLine(line);
    });
  }
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${recent.join("\n")}`);
    if (Date.now() > deadline) throw new Error(`wrangler dev did not start:\n${recent.join("\n")}`);
    const up = await fetch(`${base}/health`).then(
      (res) => res.ok,
      () => false,
    );
    if (up) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { api: api(base), process: child, port };
}

async function stopWorker(worker: DevWorker): Promise<void> {
  const { process: child } = worker;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

/**
 * The reference Worker's wrangler config, written beside the build like NO_QUEUE_CONFIG, with
 * wrangler.toml's compatibility date so both run on the same runtime behaviour.
 */
function writeReferenceConfig(): string {
  const file = `${WORKER_BUILD_DIR}.reference.toml`;
  const date = /^compatibility_date = .*$/m.exec(readFileSync(`${ROOT}/wrangler.toml`, "utf8"));
  if (!date) throw new Error("wrangler.toml has no compatibility_date");
  const main = `main = ${JSON.stringify(`${ROOT}/bench/reference-worker/index.ts`)}`;
  writeFileSync(file, `name = "streamhook-bench-reference"\n${main}\n${date[0]}\n`);
  return file;
}

export async function startBenchStack(vars: {
  kicked: Record<string, string>;
  manual: Record<string, string>;
}): Promise<BenchStack> {
  setup(); // builds the Worker as `wrangler deploy` would, and writes NO_QUEUE_CONFIG
  const queueOps = queueOpsCounter();
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

  const kicked = await startWorker(bridgeUrl, vars.kicked, `${ROOT}/wrangler.toml`, queueOps.line);
  const manual = await startWorker(
    bridgeUrl,
    { ...vars.manual, KICK_ON_PUBLISH: "false" },
    NO_QUEUE_CONFIG,
    () => {},
  );
  let reference: Promise<DevWorker> | null = null;
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
    cron: async () => {
      const res = await fetch(`${kicked.api.base}/cdn-cgi/handler/scheduled?cron=*+*+*+*+*`);
      if (!res.ok) throw new Error(`cron: ${res.status} ${await res.text()}`);
    },
    queueOps: queueOps.read,
    manual: manual.api,
    async referenceWorker() {
      reference ??= startWorker(bridgeUrl, {}, writeReferenceConfig(), () => {});
      return (await reference).api;
    },
    workerdPid(which) {
      const worker = which === "kicked" ? kicked : manual;
      return workerdPid(worker.process.pid!, worker.port);
    },
    receivers,
    bridgeStats: () => ask("stats", "stats"),
    async stop() {
      await receivers.close();
      await stopWorker(kicked);
      await stopWorker(manual);
      // One that failed to start has nothing left to stop.
      if (reference) await reference.then(stopWorker, () => {});
      await ask("closed", "close");
      await bridge.terminate();
      await redisServer.stop();
    },
  };
}
