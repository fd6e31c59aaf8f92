// The Redis clients and the reading of their replies.
//
// @upstash/redis speaks the Upstash REST protocol (Upstash in production, dev/bridge.ts locally).
// `automaticDeserialization: false` keeps replies as Redis sends them (RESP2 shapes) and message
// data as the JSON text it was stored as, so it passes through to webhooks untouched. The small
// decoders at the bottom turn those `unknown` replies into typed values, so no `any` leaks out.
//
// Lost replies. A connection can drop after Upstash ran a command; sending the request again is
// right for a call that is safe to repeat and wrong for one that is not. So every call is sent
// on one of two clients, decided per call:
//
//   db.redis  repeats a request whose outcome is unknown (`isOutcomeUnknown`: a network error, no
//             reply in time, a reply that is not Upstash's JSON): reads, and writes that end in
//             the same state however often they run (XACK, ZADD, HSET, SET NX + compare, the
//             idempotent scripts). Most calls.
//   db.once   sends a request exactly once; a lost reply throws and `isOutcomeUnknown` says so.
//             For calls that are not safe to repeat (the publish script, the take script, a
//             round's XADDs): the caller then sends the call's idempotent recovery form on
//             db.redis (see lua/publish.ts and worker/rounds.ts), which may be repeated.
//
// Both share one read-your-writes token, so a read on one sees the writes made on the other.

import { errors, Redis } from "@upstash/redis/cloudflare";
import type { Config } from "./config.ts";
import { createKeys, type Keys } from "./keys.ts";
import type { Meter } from "./meter.ts";

export type { Redis };

/** What every data-access function takes: the clients and the key layout under its prefix. */
export interface Db {
  /** Repeats a request whose reply was lost: for calls that are safe to repeat. */
  redis: Redis;
  /** Sends a request once: for calls that are not safe to repeat (see the header). */
  once: Redis;
  keys: Keys;
  /** The invocation's meter: every request of both clients is one of its subrequests. */
  meter: Meter;
}

/**
 * The clients of one invocation, metered by `meter` (shared/meter.ts): every HTTP request either
 * makes, repeats included, is counted and holds one of the invocation's connections while it runs.
 * Made per invocation (a client is a small object; its auto-pipelining batches the calls one
 * invocation makes at once).
 */
export function getDb(config: Config, meter: Meter): Db {
  const make = () =>
    new Redis({
      url: config.redisUrl,
      token: config.redisToken,
      automaticDeserialization: false,
      // Plain UTF-8 replies instead of base64: every value stored here is text (JSON, ids,
      // names), and base64 costs an atob + TextDecoder per string on the hot path (measured:
      // see docs/performance.md). Binary values would need it back.
      responseEncoding: false,
      enableTelemetry: false,
      signal: () => AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      // One attempt per request here: repeats are made (and metered) by `metered` below.
      retry: { retries: 0, backoff: () => 0 },
    });
  const redis = make();
  const once = make();
  metered(redis, meter, REPEATS);
  metered(once, meter, []);
  shareSyncToken(redis, once);
  return { redis, once, keys: createKeys(config.keyPrefix), meter };
}

// No reply within this long counts as a lost reply (the request may or may not have run). Far
// above any command here (a pass's largest request is a few MB), far below a Worker's wall time.
const REQUEST_TIMEOUT_MS = 10_000;

// Two quick repeats, not the client's default five (~4 s): an unreachable Redis should become a
// 503 while the caller still waits.
const REPEATS = [50, 100];

/**
 * Sends every request of `client` through the meter, one subrequest per HTTP request, and repeats
 * those whose outcome is unknown after each of `repeats` (ms) in turn: `db.redis` repeats, `db.once`
 * does not. The client's own retry repeats only when fetch throws; a reply can also be lost as a
 * proxy's error page or a cut body (UpstashJSONParseError), and under wrangler's test harness
 * every dropped connection reaches the Worker that way (a 500 from miniflare), so the repeat is
 * made here, at its requester, on every `isOutcomeUnknown` error. This reaches into the client's
 * one documented requester field (`request`); a client without it is a bug to see at once.
 */
function metered(client: Redis, meter: Meter, repeats: number[]): void {
  const requester: unknown = Reflect.get(client, "client");
  if (typeof requester !== "object" || requester === null || !("request" in requester)) {
    throw new Error("@upstash/redis: the client has no requester to meter");
  }
  const send = requester.request;
  if (typeof send !== "function") throw new Error("@upstash/redis: the requester cannot send");
  const request = async (req: unknown): Promise<unknown> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await meter.subrequest(() => send.call(requester, req));
      } catch (error) {
        const wait = repeats[attempt];
        if (wait === undefined || !isOutcomeUnknown(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  };
  Object.defineProperty(requester, "request", { value: request });
}

// Upstash's read-your-writes token lives in each client's HTTP requester. Two clients would each
// track their own, and a read on one could miss a write just made on the other (a global
// database's replica); so the second client's token is made the first's. Reaches into the
// requester's one documented field (`Requester.upstashSyncToken`); if its shape ever changes,
// the clients simply keep separate tokens, as two clients would.
function shareSyncToken(first: Redis, second: Redis): void {
  const a: unknown = Reflect.get(first, "client");
  const b: unknown = Reflect.get(second, "client");
  if (!isRequester(a) || !isRequester(b)) return;
  Object.defineProperty(b, "upstashSyncToken", {
    get: () => a.upstashSyncToken,
    set: (token: string) => {
      a.upstashSyncToken = token;
    },
  });
}

function isRequester(value: unknown): value is { upstashSyncToken: string } {
  return typeof value === "object" && value !== null && "upstashSyncToken" in value;
}

const shas = new Map<string, Promise<string>>();

/** The SHA-1 of a script's source, as EVALSHA names it (computed once per isolate). */
export function scriptSha(source: string): Promise<string> {
  let sha = shas.get(source);
  if (!sha) {
    sha = crypto.subtle
      .digest("SHA-1", new TextEncoder().encode(source))
      .then((digest) =>
        Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join(""),
      );
    shas.set(source, sha);
  }
  return sha;
}

const isNoScript = (error: unknown) => error instanceof Error && /NOSCRIPT/i.test(error.message);

/**
 * Runs a Lua script from shared/lua with EVALSHA, falling back to EVAL when Redis does not have it
 * cached, on the given client.
 *
 * Every script starts `#!lua flags=allow-key-locking`: Upstash otherwise runs a script under a
 * global lock, so one channel's publish would wait for another's. The flag asks it to lock only
 * the keys in KEYS, which every script here declares (Redis 7 then refuses any other key, so a
 * script that reaches past its KEYS fails in dev and tests too; the bridge strips the flag, which
 * only Upstash knows).
 */
export async function runScript(
  client: Redis,
  source: string,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const sha = await scriptSha(source);
  try {
    return await client.evalsha(sha, keys, args);
  } catch (error) {
    if (!isNoScript(error)) throw error;
    return client.eval(source, keys, args);
  }
}

export type Pipeline = ReturnType<Redis["pipeline"]>;

/** One call of a batch (sendBatch): a command added to the pipeline, or a script to run. */
export type Call =
  | { add: (pipeline: Pipeline) => void }
  | { script: string; keys: string[]; args: string[] };

/** A call's own reply in a batch: its result, or the error Redis answered it with. */
export type Reply = { ok: true; value: unknown } | { ok: false; error: Error };

/**
 * Sends calls in one request (one subrequest): a pipeline, so not atomic (each call runs, or
 * fails, on its own, in order) and each call has its own reply. A script Redis did not have
 * cached (NOSCRIPT: it did not run) is run again on its own, with EVAL (which caches it: one more
 * request, the first time after Redis lost its scripts). A lost reply throws (the caller recovers
 * each call as its own).
 *
 * Batches of one client share requests: while ROUNDS_IN_FLIGHT of its requests are out, the
 * batches sent meanwhile wait and go together in the next one, each still with its own replies
 * (and a lost reply lost for each of them). The deliverers of an invocation share its six
 * connections, all of which may be webhook POSTs: this way their round trips do not queue one
 * by one for the next connection a POST gives back.
 */
export function sendBatch(client: Redis, calls: Call[]): Promise<Reply[]> {
  if (calls.length === 0) return Promise.resolve([]);
  let queue = rounds.get(client);
  if (!queue) {
    queue = new Rounds(client);
    rounds.set(client, queue);
  }
  return queue.send(calls);
}

/** Requests of one client's batches out at once (sendBatch). */
const ROUNDS_IN_FLIGHT = 2;

interface Waiting {
  calls: Call[];
  resolve: (replies: Reply[]) => void;
  reject: (error: unknown) => void;
}

const rounds = new WeakMap<Redis, Rounds>();

class Rounds {
  private readonly waiting: Waiting[] = [];
  private out = 0;
  private readonly client: Redis;
  constructor(client: Redis) {
    this.client = client;
  }

  send(calls: Call[]): Promise<Reply[]> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ calls, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.out >= ROUNDS_IN_FLIGHT || this.waiting.length === 0) return;
    const group = this.waiting.splice(0);
    this.out++;
    void sendTogether(this.client, group).finally(() => {
      this.out--;
      this.next();
    });
  }
}

async function sendTogether(client: Redis, group: Waiting[]): Promise<void> {
  try {
    const calls = group.flatMap((w) => w.calls);
    const pipeline = client.pipeline();
    for (const call of calls) {
      if ("add" in call) call.add(pipeline);
      else pipeline.evalsha(await scriptSha(call.script), call.keys, call.args);
    }
    const raw = await pipeline.exec({ keepErrors: true });
    const replies = await Promise.all(raw.map((reply, i) => replyFor(client, calls[i]!, reply)));
    let at = 0;
    for (const w of group) {
      w.resolve(replies.slice(at, at + w.calls.length));
      at += w.calls.length;
    }
  } catch (error) {
    for (const w of group) w.reject(error);
  }
}

async function replyFor(
  client: Redis,
  call: Call,
  reply: { error?: string | undefined; result?: unknown },
): Promise<Reply> {
  if (!reply.error) return { ok: true, value: reply.result };
  const error = new errors.UpstashError(reply.error);
  if (!("script" in call) || !isNoScript(error)) return { ok: false, error };
  try {
    return { ok: true, value: await client.eval(call.script, call.keys, call.args) };
  } catch (again) {
    return { ok: false, error: again as Error };
  }
}

/** A batch reply's value, or its error thrown. */
export function replyValue(reply: Reply | undefined): unknown {
  if (!reply) throw new Error("a batch answered fewer replies than it had calls");
  if (!reply.ok) throw reply.error;
  return reply.value;
}

/** True when Redis answered with an error reply carrying this code (NOGROUP, BUSYGROUP...). */
export function isReplyError(error: unknown, code: string): boolean {
  return error instanceof errors.UpstashError && error.message.includes(code);
}

/**
 * One command's reply from `pipeline.exec({ keepErrors: true })`: its result, or its error thrown
 * as the client would throw it on its own (so isReplyError and the rest read it the same way).
 */
export function replyOf(entry: { error?: string | undefined; result?: unknown }): unknown {
  if (entry.error) throw new errors.UpstashError(entry.error);
  return entry.result;
}

/**
 * True when a request may or may not have run: the connection failed (fetch throws a TypeError),
 * no reply came in time, or the reply was not Upstash's JSON (a proxy's page, a cut body). A call
 * sent on `db.once` then needs its recovery form.
 */
export function isOutcomeUnknown(error: unknown): boolean {
  if (error instanceof errors.UpstashJSONParseError) return true;
  if (error instanceof errors.UpstashError) return false;
  if (error instanceof TypeError) return true;
  return error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");
}

/**
 * True when the error means "Redis could not be reached" rather than "Redis said no": a lost
 * reply, or the bridge's UNAVAILABLE answer when its own Redis is down (LOADING, MASTERDOWN: a
 * Redis that is starting or failing over).
 */
export function isUnavailable(error: unknown): boolean {
  if (isOutcomeUnknown(error)) return true;
  return (
    error instanceof errors.UpstashError && /UNAVAILABLE|LOADING|MASTERDOWN/.test(error.message)
  );
}

/**
 * True when Upstash (or Redis) refused a write for size: a key over the record limit, the
 * database over its capacity, a Redis over maxmemory. Reads and deletes still work then.
 */
export function isStorageFull(error: unknown): boolean {
  return error instanceof Error && STORAGE_FULL.test(error.message);
}

export const STORAGE_FULL =
  /max single record size exceeded|DB capacity quota exceeded|OOM command not allowed/;

// ---- reply decoders -------------------------------------------------------------------------

export class ReplyShapeError extends Error {
  override name = "ReplyShapeError";
}

export function asString(value: unknown): string {
  if (typeof value === "string") return value;
  if (typeof value === "number") return String(value);
  throw new ReplyShapeError(`expected a string reply, got ${JSON.stringify(value)}`);
}

export function asNumber(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value.trim() !== "" && !Number.isNaN(Number(value))) {
    return Number(value);
  }
  throw new ReplyShapeError(`expected a number reply, got ${JSON.stringify(value)}`);
}

export function asArray(value: unknown): unknown[] {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value;
  throw new ReplyShapeError(`expected an array reply, got ${JSON.stringify(value)}`);
}

export function asOptionalString(value: unknown): string | null {
  return value === null || value === undefined ? null : asString(value);
}

/** A flat [field, value, field, value...] reply as a record. */
export function asFields(value: unknown): Record<string, string> {
  const flat = asArray(value);
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[asString(flat[i])] = asString(flat[i + 1]);
  return out;
}

export interface StreamEntry {
  id: string;
  /** Null for an entry deleted from the stream while it was pending (a history read shows it). */
  fields: Record<string, string> | null;
}

/** XRANGE / XCLAIM / XREADGROUP entries: [[id, [f, v, ...] or nil], ...]; nil entries skipped. */
export function asEntries(value: unknown): StreamEntry[] {
  return asEntriesWithDeleted(value).filter((entry) => entry.fields !== null);
}

/** The same, keeping deleted entries (fields null): a history read must ack them away. */
export function asEntriesWithDeleted(value: unknown): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const raw of asArray(value)) {
    if (raw === null) continue;
    const [id, fields] = asArray(raw);
    entries.push({ id: asString(id), fields: fields === null ? null : asFields(fields) });
  }
  return entries;
}

/** XREADGROUP / XREAD replies: [[stream, entries], ...] as a map of stream key to entries. */
export function asStreams(value: unknown): Map<string, StreamEntry[]> {
  const out = new Map<string, StreamEntry[]>();
  for (const raw of asArray(value)) {
    const [key, entries] = asArray(raw);
    out.set(asString(key), asEntriesWithDeleted(entries));
  }
  return out;
}
