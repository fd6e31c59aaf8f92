// `npm run dev`: the whole local stack, ready to curl. (dev/bootstrap.mjs has already installed
// dependencies and redis-server.)
//
//   redis-server  127.0.0.1:$REDIS_PORT (6380), data in $REDIS_DIR (.data/), append-only file on,
//                 so messages survive a restart; skipped when UPSTASH_REDIS_REST_URL/_TOKEN are set
//   REST bridge   127.0.0.1:$BRIDGE_PORT (8079), token $BRIDGE_TOKEN: speaks Upstash's protocol,
//                 refuses what Upstash refuses; BRIDGE_MAX_*, BRIDGE_FAULTS: see bridge-env.ts
//   the Worker    `wrangler dev` on 127.0.0.1:$PORT (8787), API token $API_TOKEN, with its delivery
//                 queue; it prints its own logs, a failed webhook request among them, as it happens
//   its cron      `wrangler dev` fires no cron trigger by itself (it says so when it starts): this
//                 stack does, at the start of every minute, by the URL wrangler names
//
// Every Worker configuration variable set in this environment is passed through to the Worker
// (`MAX_MESSAGE_BYTES=1000 npm run dev`); ALLOW_HTTP_WEBHOOKS and ALLOW_PRIVATE_WEBHOOKS are on
// unless set (`0` or `false` turns one off). Ctrl-C stops everything.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createConnection } from "node:net";
import { join, resolve } from "node:path";
import { CONFIG_VARIABLES } from "../shared/config.ts";
import { type Bridge, startBridge } from "./bridge.ts";
import { bridgeOptionsFromEnv } from "./bridge-env.ts";
import { commandLine, parseOptions } from "./cli.ts";

const USAGE = `usage: npm run dev

The whole stack on this machine, ready to curl: redis-server, the Upstash REST bridge in front of
it, and the Worker under \`wrangler dev\` with its delivery queue; the stack fires the Worker's
cron at the start of every minute. Ctrl-C stops everything. It takes no options: set these in
its environment instead (e.g. PORT=8788 npm run dev):

  PORT                  the Worker's port (default 8787)
  API_TOKEN             the API's bearer token (default dev-api-token)
  REDIS_PORT            redis-server's port (default 6380)
  REDIS_DIR             where redis-server keeps its data (default .data/)
  BRIDGE_PORT           the REST bridge's port (default 8079)
  BRIDGE_TOKEN          the bridge's token (default dev-bridge-token)
  BRIDGE_FAULTS         faults the bridge injects, e.g. drop-reply=0.02,refuse=0.01,delay=0.05:200
  UPSTASH_REDIS_REST_URL, UPSTASH_REDIS_REST_TOKEN
                        use that Upstash database; no redis-server, no bridge
  any Worker variable   passed through (docs/operations.md), e.g. RETRY_BASE_MS=2000

  -h, --help            print this and exit`;

commandLine("dev", USAGE, (argv) => parseOptions(argv, {}));

const root = join(import.meta.dirname, "..");
const env = process.env;
const port = Number(env.PORT ?? 8787);
const redisPort = Number(env.REDIS_PORT ?? 6380);
const redisDir = resolve(root, env.REDIS_DIR || ".data");
const bridgePort = Number(env.BRIDGE_PORT ?? 8079);
const bridgeToken = env.BRIDGE_TOKEN ?? "dev-bridge-token";
const apiToken = env.API_TOKEN ?? "dev-api-token";
const upstash = env.UPSTASH_REDIS_REST_URL && env.UPSTASH_REDIS_REST_TOKEN;

let redisProcess: ChildProcess | undefined;
let workerProcess: ChildProcess | undefined;
let bridge: Bridge | undefined;
let cron: NodeJS.Timeout | undefined;
let stopping = false;

function say(line: string): void {
  process.stdout.write(`[streamhook] ${line}\n`);
}

function portIsOpen(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port: p });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopping) throw new Error("stopped");
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what} did not come up within ${timeoutMs / 1000} s`);
}

function start(command: string, args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...env, ...extraEnv },
    stdio: ["ignore", "inherit", "inherit"],
  });
  child.on("exit", (code, signal) => {
    if (!stopping) {
      say(`${command} exited (${signal ?? code}); stopping the stack`);
      void stop(1);
    }
  });
  return child;
}

async function startRedis(): Promise<string> {
  if (await portIsOpen(redisPort)) {
    throw new Error(`port ${redisPort} is taken: stop what runs there or set REDIS_PORT`);
  }
  mkdirSync(redisDir, { recursive: true });
  redisProcess = start("redis-server", [
    "--port",
    String(redisPort),
    "--bind",
    "127.0.0.1",
    "--dir",
    redisDir,
    "--appendonly",
    "yes",
    "--appendfsync",
    "everysec",
    "--save",
    "",
    "--loglevel",
    "warning",
  ]);
  await waitFor("redis-server", () => portIsOpen(redisPort), 15_000);
  return `redis://127.0.0.1:${redisPort}`;
}

// Local receivers are http://127.0.0.1 or http://localhost: dev accepts them unless told not to
// (ALLOW_HTTP_WEBHOOKS=0 npm run dev), where production refuses them by default.
const DEV_DEFAULTS = { ALLOW_HTTP_WEBHOOKS: "1", ALLOW_PRIVATE_WEBHOOKS: "1" };

function workerVars(redisUrl: string, redisToken: string): string[] {
  const vars: Record<string, string> = { ...DEV_DEFAULTS };
  for (const name of CONFIG_VARIABLES) {
    const value = env[name];
    if (value !== undefined && value !== "") vars[name] = value;
  }
  Object.assign(vars, {
    UPSTASH_REDIS_REST_URL: redisUrl,
    UPSTASH_REDIS_REST_TOKEN: redisToken,
    API_TOKEN: apiToken,
  });
  return Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]);
}

// `wrangler dev` fires no cron trigger by itself: this fires the one in wrangler.toml, "* * * * *",
// at the start of every minute, by the URL wrangler's own warning names.
function scheduleCron(base: string): void {
  const fire = async () => {
    const res = await fetch(`${base}/cdn-cgi/local/scheduled?cron=*+*+*+*+*`).catch(
      (error: Error) => ({ status: error.message }),
    );
    say(`cron trigger fired (* * * * *): ${res.status}`);
  };
  const next = () => {
    cron = setTimeout(
      () => {
        void fire();
        next();
      },
      60_000 - (Date.now() % 60_000),
    );
  };
  next();
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  await exited;
}

async function stop(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  if (cron) clearTimeout(cron);
  say("stopping...");
  // Outside in: the Worker first, then the bridge, then Redis (SIGTERM: it flushes its AOF).
  await stopChild(workerProcess);
  await bridge?.close().catch(() => {});
  await stopChild(redisProcess);
  process.exit(code);
}

async function main(): Promise<void> {
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => stop());

  let redisUrl = env.UPSTASH_REDIS_REST_URL ?? "";
  let redisToken = env.UPSTASH_REDIS_REST_TOKEN ?? "";
  if (!upstash) {
    const bridgeOptions = bridgeOptionsFromEnv(env); // a wrong BRIDGE_* fails before Redis starts
    const tcp = await startRedis();
    bridge = await startBridge({
      redisUrl: tcp,
      token: bridgeToken,
      port: bridgePort,
      ...bridgeOptions,
    });
    redisUrl = bridge.url;
    redisToken = bridgeToken;
    say(`redis-server on ${tcp} (data in ${redisDir}), REST bridge on ${bridge.url}`);
    if (env.BRIDGE_FAULTS) say(`the bridge injects faults: ${env.BRIDGE_FAULTS}`);
  } else {
    say(`using the Upstash database at ${redisUrl}`);
  }

  const base = `http://127.0.0.1:${port}`;
  workerProcess = start(join(root, "node_modules", ".bin", "wrangler"), [
    "dev",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--show-interactive-dev-session=false",
    ...workerVars(redisUrl, redisToken),
  ]);
  await waitFor("the Worker", async () => (await fetch(`${base}/health`)).ok);
  scheduleCron(base);

  say("");
  say(`ready: ${base}`);
  say(`API token: ${apiToken}`);
  say(`try: curl -X POST ${base}/v1/channels/orders/messages \\`);
  say(`       -H 'authorization: Bearer ${apiToken}' -H 'content-type: application/json' \\`);
  say(`       -d '{"type":"order.created","data":{"id":42}}'`);
  say("delivery: right after each publish; retries and long backlogs through the delivery queue");
  say("failed webhook requests show below as they happen, one line each: webhook failed: ...");
  say("cron: wrangler dev fires no cron trigger by itself; this stack fires the Worker's");
  say(
    `      "* * * * *" at the start of every minute (or now: curl ${base}/cdn-cgi/local/scheduled)`,
  );
  say("Ctrl-C stops everything");
}

main().catch((error: Error) => {
  say(`failed: ${error.message}`);
  void stop(1);
});
