// What one invocation may spend, so it stays inside Workers' limits: wall time (a kick runs in
// waitUntil, which ends about 30 s after the response) and subrequests (every Upstash request and
// every webhook POST counts; 10,000 per invocation on the paid plan, 50 on the free one).
//
// Time is passed in (`now`), never read here. Every visit reserves, when it starts, the round
// trips it needs to end cleanly (its finish or close, and a release), so visits that start late
// in a pass cannot spend what the ones already running need.

import type { Config } from "../shared/config.ts";

/** Round trips a visit keeps back for its end: its last write, and a lease release. */
export const VISIT_RESERVE = 2;
/** The least a visit must be able to spend to be worth starting: lease, read, one POST. */
const VISIT_START = 3;
/** One batch: a read (or claim), its POST, and its dead letters if any. */
const BATCH = 3;

export class Budget {
  readonly startedAt: number;
  readonly deadline: number;
  private readonly maxSubrequests: number;
  private spent = 0;
  private reserved = 0;

  constructor(config: Config, startedAt: number) {
    this.startedAt = startedAt;
    this.deadline = startedAt + config.passBudgetMs;
    this.maxSubrequests = config.passMaxSubrequests;
  }

  get subrequests(): number {
    return this.spent;
  }

  /** Counts Redis requests or webhook POSTs made. */
  spend(subrequests = 1): void {
    this.spent += subrequests;
  }

  /** May a visit start now? If so, keeps back its end's round trips (give them back with end). */
  startVisit(now: number): boolean {
    if (!this.fits(now, VISIT_START + VISIT_RESERVE)) return false;
    this.reserved += VISIT_RESERVE;
    return true;
  }

  /** A visit ended: what it kept back is free again (its end's requests were spent as made). */
  endVisit(): void {
    this.reserved = Math.max(0, this.reserved - VISIT_RESERVE);
  }

  /** May `batches` more batches start now (each a read, a POST and its writes)? */
  allowsBatch(now: number, batches = 1): boolean {
    return this.fits(now, BATCH * batches);
  }

  private fits(now: number, subrequests: number): boolean {
    return now < this.deadline && this.spent + this.reserved + subrequests <= this.maxSubrequests;
  }
}
