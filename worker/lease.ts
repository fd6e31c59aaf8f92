// A deliverer's lease on one subscription, as the deliverer sees it, pure. The lease itself is a
// Redis string holding the token (schedule.ts takes it, lua/release.ts gives it back, the close
// and finish scripts compare it); this says how long it surely lasts, so no batch is started
// that the lease might not outlive.

// Room kept after the last POST a lease covers: the round trips that end the visit (close or
// finish, release) and the clock difference between the Worker and Redis.
export const LEASE_MARGIN_MS = 5_000;

export class Lease {
  readonly token: string;
  /** When the lease surely ends: taken before the SET was sent, so Redis' own TTL ends later. */
  readonly expiresAt: number;

  constructor(token: string, takenAt: number, ttlMs: number) {
    this.token = token;
    this.expiresAt = takenAt + ttlMs;
  }

  /** Does the lease outlive something that starts at `now` and takes up to `durationMs`? */
  covers(now: number, durationMs: number): boolean {
    return now + durationMs + LEASE_MARGIN_MS <= this.expiresAt;
  }
}

/**
 * How long a visit's lease lasts: until the pass's deadline (no batch starts after it), plus the
 * subscription's timeout (a batch started just before the deadline), plus the margin. Shorter,
 * and a slow POST could be sent twice by the next deliverer.
 */
export function leaseMs(deadline: number, now: number, timeoutMs: number): number {
  return Math.max(0, deadline - now) + timeoutMs + LEASE_MARGIN_MS;
}
