// Timers: time-driven work other than delivery, kept in {p}:due beside the delivery schedule as
// members "<kind>:<name>" (shared/keys.ts), so that the cron's one ZRANGE finds everything that is
// due and an idle cron stays one command. Each kind has a handler here (its type: worker.ts),
// which delivers what it wakes itself: a kick (w.kick), or tasks to the delivery queue. A pass
// runs the due ones before its deliveries; the cron with a queue, after handing those to the
// queue. A handler may also be reached through the delivery queue: a timer task, sent with a
// delay (Queues counts whole seconds; the cron comes once a minute).
//
// A handler must be safe to run twice, or twice at once, for the same timer (two cron invocations
// may overlap, a queue task may come again), and it moves or removes its member itself: a member
// left due is run again by the next cron.

import { parseTimerMember, type TimerKind } from "../shared/keys.ts";
import { enterDelayed } from "./delayed.ts";
import { rewakeRoster } from "./roster.ts";
import { runSchedule } from "./schedule-runs.ts";
import { sweep } from "./sweep.ts";
import type { DueTimer } from "./timer-task.ts";
import type { TimerHandler, Worker } from "./worker.ts";

// A timer's task and the timer a handler gets are timer-task.ts's, a handler's type worker.ts's,
// so that handlers, and the dispatch that sends their tasks, need nothing of this file (which
// imports the handlers).
export { asTimerTask, type DueTimer, type TimerTask, timerTask } from "./timer-task.ts";
export type { TimerHandler };

export const TIMER_HANDLERS: Record<TimerKind, TimerHandler> = {
  delay: enterDelayed,
  schedule: runSchedule,
  sweep,
  roster: rewakeRoster,
};

/** Runs `timer` by its kind's handler. */
export function runTimer(w: Worker, timer: DueTimer, now: number): Promise<void> {
  const handlers: Record<string, TimerHandler> = TIMER_HANDLERS;
  return handlers[timer.kind]!(w, timer, now);
}

/** The timer of a {p}:due member and score; null for a delivery member. */
export function timerOf(member: string, at: number): DueTimer | null {
  const parsed = parseTimerMember(member);
  return parsed ? { ...parsed, at } : null;
}

/**
 * Runs the due timers one after another, each under the invocation's budget; one that throws is
 * logged and left due (the next cron tries it again), and the rest still run.
 */
export async function runTimers(w: Worker, timers: DueTimer[], now: number): Promise<void> {
  for (const timer of timers) {
    if (!w.db.meter.allows(w.clock(), 2)) return;
    try {
      await runTimer(w, timer, now);
    } catch (error) {
      console.error(`timer ${timer.kind}:${timer.name} failed:`, error);
    }
  }
}
