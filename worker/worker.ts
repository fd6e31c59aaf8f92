// A Worker invocation as the delivery code sees it (the cron's, a queue consumer's, a publish's):
// its clients, clock and budget (Invocation), the delivery queue to hand work to, and a kick, to
// deliver at once to subscribers that were just woken. Its own module, so that what pass.ts runs
// (timers.ts and the timer handlers) takes it without importing pass.ts.

import type { PassSummary } from "../shared/delivery.ts";
import type { WokenSubscriber } from "../shared/streams.ts";
import type { Invocation } from "./deliverer.ts";
import type { Dispatch } from "./dispatch.ts";
import type { DueTimer } from "./timer-task.ts";

export interface Worker extends Invocation {
  dispatch: Dispatch;
  /**
   * Delivers to the subscribers that `woken` names (pass.ts kick: entry.ts binds it), as after a
   * publish: a timer handler whose messages woke subscribers delivers them at once.
   */
  kick(channel: string, woken: WokenSubscriber[]): Promise<PassSummary>;
}

/**
 * Runs one due timer at `now` (the cron's scheduled time, or the clock for a timer task; the
 * kinds' handlers: timers.ts). What it wakes it delivers itself (kick, or tasks to the queue).
 */
export type TimerHandler = (w: Worker, timer: DueTimer, now: number) => Promise<void>;
