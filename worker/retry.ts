// Retry timing, pure. The schedule is data: attempt n waits base * 2^(n-1), within +-20% jitter,
// capped at max. With the defaults (30 s base, 6 h cap, 15 attempts) the 14 waits are
// 30 s, 1, 2, 4, 8, 16, 32, 64, 128, 256 min, then 6 h four times: about a day and a half, like
// Svix's schedule.
//
// The jitter is a hash of (subscription, attempt), not Math.random(): the worker decides from
// the pending list (delivery count + idle time) whether a message is due, at every pass, so the
// same message must get the same delay every time it is asked. Hashing the subscription still
// spreads subscribers apart after a shared outage, and messages that failed together (a batch)
// stay due together, so a retried batch goes out whole, with the same webhook-id.

export interface RetryPolicy {
  retryBaseMs: number;
  retryMaxMs: number;
}

/**
 * How long to wait after `attempt` attempts (1 = the first send failed) before the next. After
 * 0 attempts (a message read but never sent) there is nothing to wait for.
 */
export function retryDelayMs(attempt: number, jitterKey: string, policy: RetryPolicy): number {
  if (attempt <= 0) return 0;
  const exponential = policy.retryBaseMs * 2 ** Math.min(Math.max(attempt - 1, 0), 40);
  const jittered = exponential * (0.8 + 0.4 * unitHash(`${jitterKey}#${attempt}`));
  return Math.round(Math.min(policy.retryMaxMs, jittered));
}

/** A number in [0, 1) from a string (FNV-1a, 32 bits): stable across isolates and passes. */
export function unitHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) / 2 ** 32;
}

/**
 * A Retry-After header (delta seconds, or an HTTP date) as ms from `now`; null when absent or
 * unreadable. Negative waits count as 0.
 */
export function parseRetryAfter(value: string | null, now: number): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date) || !/[a-z]/i.test(trimmed)) return null;
  return Math.max(0, date - now);
}

/**
 * When to try again after a failed request: the backoff, or the endpoint's Retry-After when it
 * asks for longer (never sooner than our own schedule, never past the cap).
 */
export function nextAttemptAt(
  now: number,
  attempt: number,
  jitterKey: string,
  policy: RetryPolicy,
  retryAfterMs: number | null,
): number {
  const backoff = retryDelayMs(attempt, jitterKey, policy);
  const asked = retryAfterMs === null ? 0 : Math.min(retryAfterMs, policy.retryMaxMs);
  return now + Math.max(backoff, asked);
}
