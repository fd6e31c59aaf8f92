// Per-key rate limits, counted by @upstash/ratelimit's fixed window (its Lua script, under
// keys.rateLimitPrefix(): "{p}:ratelimit:<key id>:<window number>", see keys.ts).
//
// Cost per request of a rate-limited key: 1 EVALSHA + 1 INCRBY, and 1 PEXPIRE on the first
// request of each window: 2 commands, 3 once per window (the first call in an isolate after
// Redis lost its script cache adds a refused EVALSHA and an EVAL). A request refused again in the
// same window by the same isolate costs nothing: the library remembers, per isolate, who is
// blocked and until when (its ephemeral cache). That cache only ever refuses, and only until the
// window ends, so it cannot let through a request Redis would refuse.
//
// Why a fixed window: it is the cheapest of the library's algorithms (a sliding window reads two
// counters: 4-5 commands), and its reset is exact, so Retry-After is too. It lets a burst of up to
// twice the limit straddle two windows; that is the price.
//
// The script runs on db.redis, which repeats a request whose reply was lost: such a request may
// then count twice, which errs toward limiting, never toward letting through.
//
// `timeout: 0`: the library would otherwise let a request through when Redis is slow (after 5 s);
// here Redis answering is needed to serve the request anyway, so a failure is a 503 like any other.

import { Ratelimit } from "@upstash/ratelimit";
import type { RateLimit } from "./api-keys.ts";
import type { Db } from "./redis.ts";

export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** When the window ends and the count starts again (ms since the epoch). */
  resetAt: number;
}

// A limiter is made per request (it holds the request's Redis client, metered per invocation),
// but its ephemeral cache (who is blocked until when) is the isolate's: one Map per (prefix,
// limit, window), so a key refused once is refused again without Redis for the rest of its window.
const caches = new Map<string, Map<string, number>>();

function limiterFor(db: Db, limit: RateLimit): Ratelimit {
  const prefix = db.keys.rateLimitPrefix();
  const id = `${prefix} ${limit.requests} ${limit.windowMs}`;
  let cache = caches.get(id);
  if (!cache) {
    cache = new Map();
    caches.set(id, cache);
  }
  return new Ratelimit({
    redis: db.redis,
    limiter: Ratelimit.fixedWindow(limit.requests, `${limit.windowMs} ms`),
    prefix,
    timeout: 0,
    analytics: false,
    ephemeralCache: cache,
  });
}

/** Counts one request of key `keyId` against its limit. */
export async function countRequest(
  db: Db,
  keyId: string,
  limit: RateLimit,
): Promise<RateLimitResult> {
  const result = await limiterFor(db, limit).limit(keyId);
  return {
    allowed: result.success,
    limit: result.limit,
    remaining: result.remaining,
    resetAt: result.reset,
  };
}
