// A local stand-in for Upstash's REST API, in front of a real redis-server.
//
// The Worker talks to Redis only through @upstash/redis, over HTTP. Locally and in tests, this
// bridge speaks the same protocol to a plain redis-server, so the code under test is the code
// that ships: same client, same requests, same RESP2 reply shapes, same error texts, and the same
// refusals: Upstash's limits are on by default (bridge-limits.ts, in scripts too via
// bridge-scripts.ts), and tests can make requests fail on purpose (bridge-faults.ts). Routes and
// arguments are in bridge-request.ts, running them in bridge-execute.ts, reply encoding in
// bridge-encoding.ts, Redis in bridge-redis.ts; this module is the HTTP side: auth, sizes,
// faults, status codes, counting.
//
//   200 {"result": ...}          a command's reply (also [{"result"}|{"error"}, ...] for
//                                /pipeline and /multi-exec)
//   400 {"error": "ERR ..."}     Redis' error reply, kept verbatim; a refused write; or a
//                                malformed or oversized request (nothing ran)
//   401 {"error":"Unauthorized"} missing or wrong token (Bearer header or ?_token=)
//   405 {"error":"Method Not Allowed"}
//   503 {"error":"UNAVAILABLE redis is unreachable: ..."}  Redis down: answered at once

import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { encodeReply } from "./bridge-encoding.ts";
import { type Guard, runInOrder, runTransaction } from "./bridge-execute.ts";
import { type FaultInjector, type FaultRule, type Faults, faultInjector } from "./bridge-faults.ts";
import { type Limits, REQUEST_TOO_BIG, UPSTASH_LIMITS } from "./bridge-limits.ts";
import { connect, type Outcome, setCapacity, Unavailable } from "./bridge-redis.ts";
import { BadRequest, type Call, parseCall } from "./bridge-request.ts";
import { scripts } from "./bridge-scripts.ts";

export interface BridgeOptions {
  redisUrl: string;
  token: string;
  /** 0 = any free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1: the bridge is for this machine only. */
  host?: string;
  /** Largest request body, bytes; a bigger one is answered 400 before anything runs. 10 MiB. */
  maxRequestBytes?: number;
  /** Largest key (MEMORY USAGE + what a write adds), bytes. Default 100 MiB. */
  maxRecordBytes?: number;
  /** Pending entries a consumer may hold after XREADGROUP ... >. Default 1000. */
  maxPendingPerConsumer?: number;
  /**
   * Database capacity, bytes: sets Redis' maxmemory (noeviction) on start, and its OOM replies
   * read as Upstash's. Default: Redis' own setting, untouched.
   */
  maxDataBytes?: number;
  /** Fault rules in place from the start (`bridge.faults.add` adds more). Default none. */
  faults?: FaultRule[];
  /** Seed of the faults' PRNG, so rates give the same faults run after run. Default fixed. */
  seed?: number;
  /**
   * Told when each request arrives and when its answer is done (or its connection cut): tests
   * count the requests a Worker has open at once, here and at their receivers together.
   */
  gauge?: { enter(): void; leave(): void };
}

export interface Bridge {
  readonly url: string;
  readonly port: number;
  /**
   * HTTP requests served, Redis commands run (each one of a pipeline counts; not probes), and
   * the largest reply body sent, in bytes (what a Worker must hold in its 128 MB at once).
   */
  readonly stats: { requests: number; commands: number; largestReplyBytes: number };
  /** Add and remove faults; see bridge-faults.ts. */
  readonly faults: Faults;
  close(): Promise<void>;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT"]);

type Reply = { status: number; body: unknown };
/** Close the connection without an answer (a refused or dropped reply). */
const HANG_UP = "hang up";

interface Context extends Guard {
  token: string;
  maxRequestBytes: number;
  faults: FaultInjector;
  stats: { commands: number };
}

/** Starts the bridge once Redis answers; throws if Redis is unreachable at start. */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const redis = await connect(options.redisUrl);
  const limits: Limits = {
    maxRecordBytes: options.maxRecordBytes ?? UPSTASH_LIMITS.maxRecordBytes,
    maxPendingPerConsumer: options.maxPendingPerConsumer ?? UPSTASH_LIMITS.maxPendingPerConsumer,
  };
  const stats = { requests: 0, commands: 0, largestReplyBytes: 0 };
  const context: Context = {
    redis,
    limits,
    scripts: scripts(limits),
    token: options.token,
    maxRequestBytes: options.maxRequestBytes ?? UPSTASH_LIMITS.maxRequestBytes,
    faults: faultInjector(options.seed, options.faults),
    stats,
  };
  // Upstash returns a sync token for read-your-writes; one connection gives that already, so any
  // changing value will do.
  let syncToken = 0;

  const server = createServer((req, res) => {
    stats.requests++;
    const gauge = options.gauge;
    if (gauge) {
      gauge.enter();
      res.once("close", () => gauge.leave());
    }
    answer(req, context)
      .catch((error: unknown) => {
        console.error("[bridge] unexpected error", error);
        return { status: 500, body: { error: `ERR bridge failed: ${(error as Error).message}` } };
      })
      .then((reply) => {
        if (reply === HANG_UP) return void req.socket.destroy();
        const bytes = send(res, reply, ++syncToken);
        stats.largestReplyBytes = Math.max(stats.largestReplyBytes, bytes);
      });
  });
  const host = options.host ?? "127.0.0.1";
  try {
    if (options.maxDataBytes !== undefined) await setCapacity(redis, options.maxDataBytes);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
  } catch (error) {
    redis.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
    port,
    stats,
    faults: context.faults,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      // Clients keep connections alive; close() alone would wait for them to go idle and time out.
      server.closeAllConnections();
      await closed;
      redis.close();
    },
  };
}

async function answer(req: IncomingMessage, context: Context): Promise<Reply | typeof HANG_UP> {
  const method = req.method ?? "GET";
  if (!METHODS.has(method)) return { status: 405, body: { error: "Method Not Allowed" } };
  const target = req.url ?? "/";
  if (!authorized(req, target, context.token)) {
    return { status: 401, body: { error: "Unauthorized" } };
  }
  const body = await readBody(req, context.maxRequestBytes);
  if (!body) return { status: 400, body: { error: REQUEST_TOO_BIG } };
  let call: Call;
  try {
    call = parseCall(target, method, body);
  } catch (error) {
    if (error instanceof BadRequest) return { status: 400, body: { error: error.message } };
    throw error;
  }
  const fault = context.faults.pick(call.kind === "single" ? [call.command] : call.commands);
  if (fault?.kind === "refuse") return HANG_UP;
  if (fault?.kind === "unavailable") {
    return { status: 503, body: { error: "UNAVAILABLE redis is unreachable: injected fault" } };
  }
  if (fault?.kind === "delay") await sleep(fault.delayMs);
  const base64 = req.headers["upstash-encoding"]?.toString().toLowerCase() === "base64";
  let reply: Reply;
  try {
    reply = await execute(call, context, base64);
  } catch (error) {
    if (error instanceof Unavailable) return { status: 503, body: { error: error.message } };
    throw error;
  }
  // After Redis ran it: the client cannot tell whether it did.
  return fault?.kind === "drop-reply" ? HANG_UP : reply;
}

/**
 * The whole body, or undefined when it is over `maxBytes`. An oversized body is still read to its
 * end (and dropped), so the client gets the 400 instead of a connection reset mid-upload.
 */
async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
  }
  return size > maxBytes ? undefined : Buffer.concat(chunks);
}

async function execute(call: Call, context: Context, base64: boolean): Promise<Reply> {
  const entry = (outcome: Outcome) =>
    "error" in outcome ? outcome : { result: encodeReply(outcome.result, base64) };
  const executed =
    call.kind === "multi-exec"
      ? await runTransaction(call.commands, context)
      : await runInOrder(call.kind === "single" ? [call.command] : call.commands, context);
  // A transaction discarded as a whole: nothing ran.
  if (!("outcomes" in executed)) return { status: 400, body: executed };
  context.stats.commands += executed.ran;
  if (call.kind !== "single") return { status: 200, body: executed.outcomes.map(entry) };
  const outcome = executed.outcomes[0]!;
  return { status: "error" in outcome ? 400 : 200, body: entry(outcome) };
}

/** Bearer header or `?_token=`, compared in constant time (digests make lengths equal). */
function authorized(req: IncomingMessage, target: string, token: string): boolean {
  const header = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  const queryAt = target.indexOf("?");
  const query = queryAt === -1 ? null : new URLSearchParams(target.slice(queryAt + 1));
  const given = header ?? query?.get("_token");
  if (!given) return false;
  const digest = (value: string) => createHash("sha256").update(value).digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** Sends the reply; returns its body's size in bytes. */
function send(res: ServerResponse, reply: Reply, syncToken: number): number {
  const text = JSON.stringify(reply.body);
  const bytes = Buffer.byteLength(text);
  res.writeHead(reply.status, {
    "content-type": "application/json",
    "content-length": bytes,
    "upstash-sync-token": String(syncToken),
  });
  res.end(text);
  return bytes;
}
