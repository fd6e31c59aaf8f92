// A local stand-in for Upstash's REST API, in front of a real redis-server.
//
// The Worker talks to Redis only through @upstash/redis, over HTTP. Locally and in tests, this
// bridge speaks the same protocol to a plain redis-server, so the code under test is the code
// that ships: same client, same requests, same RESP2 reply shapes, same error texts. Routes and
// arguments are in bridge-request.ts, reply encoding in bridge-encoding.ts, Redis in
// bridge-redis.ts; this module is the HTTP side: auth, status codes, counting.
//
//   200 {"result": ...}          a command's reply (also [{"result"}|{"error"}, ...] for
//                                /pipeline and /multi-exec)
//   400 {"error": "ERR ..."}     Redis' error reply, kept verbatim; or a malformed request
//   401 {"error":"Unauthorized"} missing or wrong token (Bearer header or ?_token=)
//   405 {"error":"Method Not Allowed"}
//   503 {"error":"UNAVAILABLE redis is unreachable: ..."}  Redis down: answered at once

import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { buffer } from "node:stream/consumers";
import { encodeReply } from "./bridge-encoding.ts";
import { connect, type Outcome, type RedisConnection, Unavailable } from "./bridge-redis.ts";
import { BadRequest, type Call, parseCall } from "./bridge-request.ts";

export interface BridgeOptions {
  redisUrl: string;
  token: string;
  /** 0 = any free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1: the bridge is for this machine only. */
  host?: string;
}

export interface Bridge {
  readonly url: string;
  readonly port: number;
  /** HTTP requests served, and Redis commands run (each one of a pipeline counts). */
  readonly stats: { requests: number; commands: number };
  close(): Promise<void>;
}

const METHODS = new Set(["GET", "HEAD", "POST", "PUT"]);

type Reply = { status: number; body: unknown };

/** Starts the bridge once Redis answers; throws if Redis is unreachable at start. */
export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const redis = await connect(options.redisUrl);
  const stats = { requests: 0, commands: 0 };
  // Upstash returns a sync token for read-your-writes; one connection gives that already, so any
  // changing value will do.
  let syncToken = 0;

  const server = createServer((req, res) => {
    stats.requests++;
    answer(req, options.token, redis, stats)
      .catch((error: unknown) => {
        console.error("[bridge] unexpected error", error);
        return { status: 500, body: { error: `ERR bridge failed: ${(error as Error).message}` } };
      })
      .then((reply) => send(res, reply, ++syncToken));
  });
  const host = options.host ?? "127.0.0.1";
  try {
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
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      // Clients keep connections alive; close() alone would wait for them to go idle and time out.
      server.closeAllConnections();
      await closed;
      redis.close();
    },
  };
}

async function answer(
  req: IncomingMessage,
  token: string,
  redis: RedisConnection,
  stats: { commands: number },
): Promise<Reply> {
  const method = req.method ?? "GET";
  if (!METHODS.has(method)) return { status: 405, body: { error: "Method Not Allowed" } };
  const target = req.url ?? "/";
  if (!authorized(req, target, token)) return { status: 401, body: { error: "Unauthorized" } };
  const body = await buffer(req);
  let call: Call;
  try {
    call = parseCall(target, method, body);
  } catch (error) {
    if (error instanceof BadRequest) return { status: 400, body: { error: error.message } };
    throw error;
  }
  const base64 = req.headers["upstash-encoding"]?.toString().toLowerCase() === "base64";
  try {
    return await execute(call, redis, stats, base64);
  } catch (error) {
    if (error instanceof Unavailable) return { status: 503, body: { error: error.message } };
    throw error;
  }
}

async function execute(
  call: Call,
  redis: RedisConnection,
  stats: { commands: number },
  base64: boolean,
): Promise<Reply> {
  const entry = (outcome: Outcome) =>
    "error" in outcome ? outcome : { result: encodeReply(outcome.result, base64) };
  switch (call.kind) {
    case "single": {
      const outcome = await redis.run(call.command);
      stats.commands += 1;
      return { status: "error" in outcome ? 400 : 200, body: entry(outcome) };
    }
    case "pipeline": {
      const outcomes = await redis.runPipeline(call.commands);
      stats.commands += outcomes.length;
      return { status: 200, body: outcomes.map(entry) };
    }
    case "multi-exec": {
      const outcomes = await redis.runMultiExec(call.commands);
      // Discarded as a whole: nothing ran.
      if (!Array.isArray(outcomes)) return { status: 400, body: outcomes };
      stats.commands += outcomes.length;
      return { status: 200, body: outcomes.map(entry) };
    }
  }
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
function send(res: ServerResponse, reply: Reply, syncToken: number) {
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "upstash-sync-token": String(syncToken),
  });
  res.end(text);
}
