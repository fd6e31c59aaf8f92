// What a timer handler is given (a due timer), and the queue message that runs a timer (a timer
// task): apart from timers.ts, which imports every handler, so that a handler, and dispatch.ts
// that sends the tasks, depend on nothing that depends on them. The handler's type is worker.ts's.

import { parseTimerMember, type TimerKind } from "../shared/keys.ts";

export interface DueTimer {
  kind: TimerKind;
  name: string;
  /** The member's score: when it came due (ms). */
  at: number;
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

/** The body as a timer task, checked (queue messages come from outside the type system). */
export function asTimerTask(body: unknown): TimerTask | null {
  if (typeof body !== "object" || body === null) return null;
  const t = body as Record<string, unknown>;
  if (t.v !== 1 || typeof t.timer !== "string" || typeof t.name !== "string") return null;
  if (typeof t.at !== "number" || !Number.isFinite(t.at)) return null;
  const parsed = parseTimerMember(`${t.timer}:${t.name}`);
  return parsed ? { v: 1, timer: parsed.kind, name: parsed.name, at: t.at } : null;
}
