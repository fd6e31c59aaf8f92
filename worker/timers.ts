// Timers: time-driven work other than delivery, kept in {p}:due beside the delivery schedule as
// members "<kind>:<name>" (shared/keys.ts), so that the cron's one ZRANGE finds everything that is
// due and an idle cron stays one command. Each kind has a handler here; the cron runs the due
// ones after its delivery work. A handler may also be reached through the delivery queue: a timer
// task, sent with a delay (Queues counts whole seconds; the cron comes once a minute).
//
// A handler must be safe to run twice, or twice at once, for the same timer (two cron invocations
// may overlap, a queue task may come again), and it moves or removes its member itself: a member
// left due is run again by the next cron.

import { parseTimerMember, type TimerKind } from "../shared/keys.ts";
import { enterDelayed } from "./delayed.ts";
import { MAX_DELAY_SECONDS, type Planned } from "./dispatch.ts";
import type { Worker } from "./pass.ts";

export interface DueTimer {
  kind: TimerKind;
  name: string;
  /** The member's score: when it came due (ms). */
  at: number;
}

/** Runs one due timer at `now` (the cron's scheduled time, or the clock). */
export type TimerHandler = (w: Worker, timer: DueTimer, now: number) => Promise<void>;

export const TIMER_HANDLERS: Record<TimerKind, TimerHandler> = { delay: enterDelayed };

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

/** A queue message that runs a timer (its handler looks at what is due itself). */
export interface TimerTask {
  v: 1;
  timer: TimerKind;
  name: string;
  /** When it is due (ms): a task that comes early waits for it. */
  at: number;
}

export const timerTask = (kind: TimerKind, name: string, at: number): TimerTask => ({
  v: 1,
  timer: kind,
  name,
  at,
});

/**
 * A timer task to send for `at`: sent at most Queues' longest delay ahead, it then comes back for
 * the rest (consumer.ts), so a timer days away still runs at its second.
 */
export const plannedTimer = (kind: TimerKind, name: string, at: number, now: number): Planned => ({
  task: timerTask(kind, name, at),
  at: Math.min(at, now + (MAX_DELAY_SECONDS - 1) * 1000),
});

/** The body as a timer task, checked (queue messages come from outside the type system). */
export function asTimerTask(body: unknown): TimerTask | null {
  if (typeof body !== "object" || body === null) return null;
  const t = body as Record<string, unknown>;
  if (t.v !== 1 || typeof t.timer !== "string" || typeof t.name !== "string") return null;
  if (typeof t.at !== "number" || !Number.isFinite(t.at)) return null;
  const parsed = parseTimerMember(`${t.timer}:${t.name}`);
  return parsed ? { v: 1, timer: parsed.kind, name: parsed.name, at: t.at } : null;
}
