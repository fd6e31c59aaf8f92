// What a timer is (timers.ts has the kinds' handlers and runs them): a due member of {p}:due and
// the type of a handler. Apart, so that the handlers' files name these without importing
// timers.ts, which imports them.

import type { TimerKind } from "../shared/keys.ts";
import type { Worker } from "./dispatch.ts";

export interface DueTimer {
  kind: TimerKind;
  name: string;
  /** The member's score: when it came due (ms). */
  at: number;
}

/**
 * Runs one due timer at `now` (the cron's scheduled time, or the clock). True when it woke
 * deliveries that the pass running it should look for (a schedule's run published, no queue took
 * them); the pass then reads what is due once more.
 */
export type TimerHandler = (w: Worker, timer: DueTimer, now: number) => Promise<boolean>;
