// The Redis client and the reading of its replies.
//
// One @upstash/redis client per isolate, speaking the Upstash REST protocol (Upstash in
// production, dev/bridge.ts locally). `automaticDeserialization: false` keeps replies as Redis
// sends them (RESP2 shapes: flat field/value arrays, nested stream entries) and keeps message data
// as the JSON text it was stored as, so it passes through to webhooks without a parse and a
// re-serialise. The small decoders below turn those `unknown` replies into typed values at the
// edge of this module, so no `any` leaks out.

import { errors, Redis } from "@upstash/redis/cloudflare";
import type { Config } from "./config.ts";
import { createKeys, type Keys } from "./keys.ts";

export type { Redis };

/** What every data-access function takes: the client and the key layout under its prefix. */
export interface Db {
  redis: Redis;
  keys: Keys;
}

export function getDb(config: Config): Db {
  return { redis: getRedis(config), keys: createKeys(config.keyPrefix) };
}

const clients = new Map<string, Redis>();

/** The shared client for this config's database (one per isolate: keeps connections warm). */
export function getRedis(config: Config): Redis {
  const id = `${config.redisUrl} ${config.redisToken}`;
  let redis = clients.get(id);
  if (!redis) {
    redis = new Redis({
      url: config.redisUrl,
      token: config.redisToken,
      automaticDeserialization: false,
      // Plain UTF-8 replies instead of base64: every value stored here is text (JSON, ids,
      // names), and base64 costs an atob + TextDecoder per string on the hot path (measured:
      // see the README's Performance section). Binary values would need it back.
      responseEncoding: false,
      enableTelemetry: false,
      // Two quick retries on a network error, not the default five (~4 s): an unreachable Redis
      // should become a 503 while the caller still waits.
      retry: { retries: 2, backoff: (attempt) => 50 * 2 ** attempt },
    });
    clients.set(id, redis);
  }
  return redis;
}

type Script = ReturnType<Redis["createScript"]>;
const scripts = new WeakMap<Redis, Map<string, Script>>();

/**
 * Runs a Lua script from shared/lua with EVALSHA, falling back to EVAL when Redis does not have it
 * cached (createScript does the fallback). Only the data-access modules in shared/ call this.
 */
export function runScript(
  db: Db,
  source: string,
  keys: string[],
  args: string[],
): Promise<unknown> {
  let cache = scripts.get(db.redis);
  if (!cache) {
    cache = new Map();
    scripts.set(db.redis, cache);
  }
  let script = cache.get(source);
  if (!script) {
    script = db.redis.createScript(source);
    cache.set(source, script);
  }
  return script.exec(keys, args);
}

/** True when Redis answered with an error reply carrying this code (NOGROUP, BUSYGROUP...). */
export function isReplyError(error: unknown, code: string): boolean {
  return error instanceof errors.UpstashError && error.message.includes(code);
}

/**
 * True when the error means "Redis could not be reached" rather than "Redis said no": a network
 * failure (fetch throws a TypeError), a body that is not JSON (a proxy's error page), or the
 * bridge's UNAVAILABLE answer when its own Redis is down.
 */
export function isUnavailable(error: unknown): boolean {
  if (error instanceof errors.UpstashJSONParseError) return true;
  if (error instanceof errors.UpstashError)
    return /UNAVAILABLE|LOADING|MASTERDOWN/.test(error.message);
  return error instanceof TypeError || (error instanceof Error && error.name === "AbortError");
}

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
  fields: Record<string, string>;
}

/** XRANGE / XCLAIM entries: [[id, [f, v, ...]], ...]; deleted entries (nil) are skipped. */
export function asEntries(value: unknown): StreamEntry[] {
  const entries: StreamEntry[] = [];
  for (const raw of asArray(value)) {
    if (raw === null) continue;
    const [id, fields] = asArray(raw);
    entries.push({ id: asString(id), fields: asFields(fields) });
  }
  return entries;
}

/** XREADGROUP / XREAD replies: [[stream, entries], ...] as a map of stream key to entries. */
export function asStreams(value: unknown): Map<string, StreamEntry[]> {
  const out = new Map<string, StreamEntry[]>();
  for (const raw of asArray(value)) {
    const [key, entries] = asArray(raw);
    out.set(asString(key), asEntries(entries));
  }
  return out;
}
