// The client's retries, as a fetch that wraps another: what openapi-fetch sends every request
// through.
//
// 429 (a key over its rate limit) and 503 (Redis unreachable) mean "nothing was done, come back
// later", so any request is sent again, after the answer's Retry-After when it has one, else after
// an exponential backoff with jitter. A request that got no answer at all (the connection broke)
// is sent again only when repeating it cannot do anything twice: a GET, or a request with an
// Idempotency-Key (every publish of this client has one: client.ts). Attempts are bounded, and a
// Retry-After longer than `maxDelayMs` is not waited for: that answer is the result.
//
// Kept apart from worker/retry.ts on purpose: the client is its own package and imports nothing
// of the server.

export interface RetryOptions {
  /** Tries per request, the first included; default 4 (1 disables retries). */
  maxAttempts?: number;
  /** First backoff when the answer has no Retry-After, doubled per retry; default 500 ms. */
  baseDelayMs?: number;
  /** Longest wait before a retry; a longer Retry-After ends the retries; default 30 s. */
  maxDelayMs?: number;
}

/** Time, for the waits between attempts: pass your own in tests. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

type Send = (request: Request) => Promise<Response>;

/**
 * A Retry-After header (delta seconds, or an HTTP date) as ms from `now`; null when absent or
 * unreadable. A date in the past is 0.
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date) || !/[a-z]/i.test(trimmed)) return null;
  return Math.max(0, date - now);
}

/** The wait before retry `retry` (1 = the first) without Retry-After: within [d/2, d]. */
export function backoffMs(retry: number, base: number, max: number, random: number): number {
  const full = Math.min(max, base * 2 ** Math.min(retry - 1, 30));
  return Math.round(full * (0.5 + random / 2));
}

/** `send`, with the retries above. */
export function retrying(send: Send, options: RetryOptions = {}, clock: Clock = systemClock): Send {
  const maxAttempts = Math.max(1, options.maxAttempts ?? 4);
  const base = options.baseDelayMs ?? 500;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  return async (request) => {
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= maxAttempts;
      let response: Response;
      try {
        // A clone per attempt: a body can be sent once.
        response = await send(last ? request : request.clone());
      } catch (error) {
        if (last || request.signal.aborted || !safeToRepeat(request)) throw error;
        await clock.sleep(backoffMs(attempt, base, maxDelayMs, Math.random()));
        continue;
      }
      if (last || (response.status !== 429 && response.status !== 503)) return response;
      const asked = parseRetryAfter(response.headers.get("retry-after"), clock.now());
      const wait = asked ?? backoffMs(attempt, base, maxDelayMs, Math.random());
      if (wait > maxDelayMs) return response;
      await response.body?.cancel().catch(() => {});
      await clock.sleep(wait);
      request.signal.throwIfAborted();
    }
  };
}

/** Sending it again cannot do anything twice: a read, or a request the API deduplicates. */
function safeToRepeat(request: Request): boolean {
  return request.method === "GET" || request.headers.has("idempotency-key");
}
