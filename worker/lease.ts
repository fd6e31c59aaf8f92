// A deliverer's lease on one subscription, as the deliverer sees it. The lease itself is a Redis
// string holding the token (schedule.ts takes it, lua/renew.ts extends it, lua/release.ts gives it
// back, the close and finish scripts compare it); this says how long it surely lasts, and renews
// it before a batch it might not outlive.
//
// A lease is short: one batch's timeout plus a margin plus a renewal window, and a visit that
// works longer renews it as it goes. So a deliverer that dies (a killed invocation) holds its
// subscription for seconds, not for a whole pass, and the next one takes over that soon.

// Room kept after the last POST a lease covers: the round trips that end the visit (close or
// finish, release) and the clock difference between the Worker and Redis.
export const LEASE_MARGIN_MS = 5_000;
// How much a lease lasts beyond one batch: a visit renews it about this often (one EVALSHA + GET +
// PEXPIRE each time), and a dead deliverer's lease outlives it by at most this much.
export const LEASE_RENEW_MS = 3_000;

/** How long a lease lasts for a subscription whose requests take up to `timeoutMs`. */
export const leaseMs = (timeoutMs: number) => timeoutMs + LEASE_MARGIN_MS + LEASE_RENEW_MS;

/** Extends the lease to `ttlMs` from now if it still holds `token`; false when it does not. */
export type Renew = (token: string, ttlMs: number) => Promise<boolean>;

export class Lease {
  readonly token: string;
  readonly ttlMs: number;
  private readonly renew: Renew;
  /** When the lease surely ends: taken before the request was sent, so Redis' TTL ends later. */
  private expiresAt: number;

  constructor(token: string, takenAt: number, ttlMs: number, renew: Renew) {
    this.token = token;
    this.ttlMs = ttlMs;
    this.renew = renew;
    this.expiresAt = takenAt + ttlMs;
  }

  /** Does the lease outlive something that starts at `now` and takes up to `durationMs`? */
  covers(now: number, durationMs: number): boolean {
    return now + durationMs + LEASE_MARGIN_MS <= this.expiresAt;
  }

  /**
   * Makes sure the lease outlives something that starts at `now` and takes up to `durationMs`,
   * renewing it if it would not. False when it is no longer this deliverer's.
   */
  async hold(now: number, durationMs: number): Promise<boolean> {
    if (this.covers(now, durationMs)) return true;
    if (!(await this.renew(this.token, this.ttlMs))) return false;
    this.expiresAt = now + this.ttlMs;
    return this.covers(now, durationMs);
  }
}
