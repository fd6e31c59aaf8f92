// What one pass may spend, so it stays inside Workers' limits: wall time (a kick runs in
// waitUntil, which ends about 30 s after the response) and subrequests (every Upstash call and
// every webhook POST counts; 10,000 per invocation on the paid plan, 50 on the free one).

import type { Config } from "../shared/config.ts";

// Kept back for the round trips that close a subscription's work (settle, close, release) on
// every subscription in flight.
const RESERVE_PER_SUBSCRIPTION = 3;

export class Budget {
  readonly startedAt: number;
  private readonly deadline: number;
  private readonly maxSubrequests: number;
  private readonly reserve: number;
  subrequests = 0;

  constructor(config: Config, startedAt = Date.now()) {
    this.startedAt = startedAt;
    this.deadline = startedAt + config.passBudgetMs;
    this.maxSubrequests = config.passMaxSubrequests;
    this.reserve = RESERVE_PER_SUBSCRIPTION * config.passConcurrency;
  }

  /** Counts Redis round trips or webhook POSTs made. */
  spend(subrequests = 1): void {
    this.subrequests += subrequests;
  }

  /** May `batches` more batches start (each a read, a POST and a settle)? */
  allowsBatch(batches = 1): boolean {
    const needed = 3 * batches;
    return (
      Date.now() < this.deadline && this.subrequests + needed + this.reserve <= this.maxSubrequests
    );
  }
}
