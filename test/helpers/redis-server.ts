// A throwaway redis-server for one test file, and Redis's own count of the commands a step runs.
//
// Tests run against a real Redis, never a mock: each file starts its own server on a free port
// of 127.0.0.1, in memory only (no RDB, no AOF) and with its own temp dir, so files can run in
// parallel and leave nothing behind. `countCommands` reads Redis's commandstats because the cost
// claims in this project are about what Upstash bills, and Upstash bills every command, those a
// Lua script runs included, which only Redis itself sees.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, realpath, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";

const REDIS_SERVER = "redis-server"; // from PATH: Debian's, installed by dev/bootstrap.mjs
// A free port can be taken by another test file between our probe and redis-server's bind.
const PORT_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

export interface RedisServer {
  port: number;
  url: string;
  /** A RESP2 client, like the REST protocol's replies. */
  client: Redis;
  /** Shuts the server down and removes its dir; safe to call twice. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** A fixed port, e.g. to restart a stopped server where a client expects it; default: any. */
  port?: number;
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const attempts = options.port === undefined ? PORT_ATTEMPTS : 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await freePort());
    try {
      return await startOn(port);
    } catch (error) {
      lastError = error;
      if (!(error instanceof PortInUse)) break;
    }
  }
  throw lastError;
}

class PortInUse extends Error {}

/** A port that was free a moment ago: the kernel picks it for a listener on port 0. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

// redis-server runs under this small sh watchdog, whose stdin is a pipe from the test process.
// EOF on it (stop() closing it, or the test process dying in any way, SIGKILL included, without
// running afterAll) makes the watchdog stop Redis and remove its dir, so nothing is left behind.
// The watchdog exits when Redis does, so its exit is the server's.
const WATCHDOG = `
dir=$1; shift
exec 3<&0
"$@" 3<&- </dev/null &
pid=$!
{ cat <&3 >/dev/null; kill -TERM "$pid" 2>/dev/null; } &
wait "$pid"
status=$?
rm -rf "$dir"
exit "$status"
`;

async function startOn(port: number): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), "streamhook-redis-"));
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
  // Its own process group, so a last-resort SIGKILL reaches Redis and the watchdog together.
  const child = spawn("sh", ["-c", WATCHDOG, "sh", dir, REDIS_SERVER, ...args, "--dir", dir], {
    stdio: ["pipe", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  const collect = (chunk: Buffer) => {
    output += chunk.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const client = new Redis({ host: "127.0.0.1", port, protocol: 2, lazyConnect: true });
  client.on("error", () => {}); // connection errors surface as rejected commands
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= (async () => {
      client.disconnect();
      await terminate(child);
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  try {
    await waitUntilReady(child, client, await realpath(dir), () => output);
  } catch (error) {
    await stop();
    throw /already in use/i.test(output) ? new PortInUse(output) : error;
  }
  return { port, url: `redis://127.0.0.1:${port}`, client, stop };
}

/** Resolves once our server answers; rejects if it exits or takes too long. */
async function waitUntilReady(
  child: ChildProcess,
  client: Redis,
  dir: string,
  output: () => string,
) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (${child.exitCode ?? child.signalCode}): ${output()}`);
    }
    try {
      await client.connect();
      // Another test file's server may own the port while ours fails to bind it: ours has our dir.
      const [, serverDir] = (await client.config("GET", "dir")) as [string, string];
      if (serverDir === dir) return;
    } catch {
      // not listening yet
    }
    client.disconnect();
    await sleep(25);
  }
  throw new Error(`redis-server did not answer within ${READY_TIMEOUT_MS} ms: ${output()}`);
}

/** Closing the watchdog's stdin stops Redis cleanly (nothing to save); SIGKILL if not in time. */
async function terminate(child: ChildProcess) {
  // Even after Redis has exited, the watchdog's reader waits for this EOF.
  child.stdin?.end();
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const timer = setTimeout(() => {
    try {
      if (child.pid) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }, STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface CommandCounts {
  total: number;
  /** Lowercase names as Redis reports them, subcommands included: `xgroup|create`. */
  byCommand: Record<string, number>;
}

// The REST bridge's probes: it sends MEMORY USAGE before a write and XINFO CONSUMERS before an
// XREADGROUP (in Lua scripts too) to refuse what Upstash refuses (dev/bridge-limits.ts). Upstash
// does not bill them, so a count of what streamhook costs leaves them out. The product sends MEMORY
// USAGE only to show channel sizes (shared/storage.ts, GET /v1/channels[/{channel}]), which no
// count here measures; it never sends XINFO CONSUMERS (grep before adding either elsewhere).
const BRIDGE_PROBES = new Set(["memory|usage", "xinfo|consumers"]);

/**
 * Redis's own count of the commands `run` caused, those run inside Lua scripts included, the
 * bridge's probes excluded.
 */
export async function countCommands(
  client: Redis,
  run: () => Promise<unknown>,
): Promise<CommandCounts> {
  await client.config("RESETSTAT");
  await run();
  const info = await client.info("commandstats");
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const match of info.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
    const name = match[1]!;
    // RESETSTAT is counted once it returns (its own call); INFO only after it has replied.
    const calls = Number(match[2]) - (name === "config|resetstat" ? 1 : 0);
    if (calls <= 0 || BRIDGE_PROBES.has(name)) continue;
    byCommand[name] = calls;
    total += calls;
  }
  return { total, byCommand };
}
