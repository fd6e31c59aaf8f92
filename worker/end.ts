// How a unit ends when it does not close (unit.ts): its last writes and its schedule, through
// lua/finish.ts; and the tally of what a visit did. The schedule for each way of ending is pure
// (`scheduleFor`), so it gets table tests.

import { retryMember, wakeMember } from "../shared/keys.ts";
import { dueMembersOf } from "../shared/subscriptions.ts";
import type { UnitEntry, WorkUnit } from "./entries.ts";
import type { Outcome } from "./judge.ts";
import type { Writes } from "./settle.ts";
import { finish, parkDeadLetters, type ScheduleChange } from "./store.ts";
import type { UnitContext } from "./unit.ts";

export interface Tally {
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
}

export const zeroTally = (): Tally => ({ delivered: 0, retried: 0, deadLettered: 0, filtered: 0 });

export function addTally(t: Tally, outcomes: Outcome[]): Tally {
  const out = { ...t };
  for (const o of outcomes) {
    if (o.kind === "filtered") out.filtered += o.entries.length;
    if (o.kind === "delivered") out.delivered += o.entries.length;
    if (o.kind === "rejected" || o.kind === "failed") {
      out.retried += o.retry.length;
      out.deadLettered += o.dead.length;
    }
  }
  return out;
}

export interface UnitReport extends Tally {
  /**
   * drained: closed, nothing new; idle: nothing to read; full: the pending list is full;
   * stopped: the endpoint failed or is gone; budget: no budget or lease left; lost: the lease
   * was not this deliverer's any more.
   */
  end: "drained" | "idle" | "full" | "stopped" | "budget" | "lost";
  /** The lease is released (or not ours): the visit need not release it. */
  released: boolean;
  /** When the unit wants its next visit, as this visit left it: a task for the queue. */
  next: Next | null;
}

/** The next visit a unit wants: at once to carry on (handover), or when a retry is due. */
export type Next = { why: "handover" | "retry"; at: number };

/** The earlier of two wants (a handover wins: it is now). */
export function earlier(a: Next | null, b: Next | null): Next | null {
  if (a === null) return b;
  if (b === null) return a;
  return b.at < a.at ? b : a;
}

/** How a unit stops early. */
export type End =
  | { kind: "idle"; schedule?: readonly ScheduleChange[]; retryAt?: number | null }
  | { kind: "full" }
  | { kind: "budget"; retryNow?: boolean }
  | { kind: "backoff"; at: number }
  | { kind: "gone" };

/** The End for what stopped sending. */
export function stopFor(stopped: Outcome | "budget"): End {
  if (stopped === "budget") return { kind: "budget" };
  if (stopped.kind === "gone") return { kind: "gone" };
  if (stopped.kind === "failed") return { kind: "backoff", at: stopped.retryAt };
  throw new Error(`a ${stopped.kind} outcome does not stop a unit`);
}

/**
 * The schedule changes of each way of ending, at `now`:
 *   idle     what the caller passes (the retry step's exact retry time)
 *   full     read nothing new for one base delay: retries must make room first
 *   budget   to the back of the queue (wake member to now, if it exists), so every due unit is
 *            served in turn; entries read but not sent are retried at once. With a queue, the
 *            unit is handed over instead: the wake member goes `graceMs` later, so a cron pass
 *            leaves the unit to the queue's task unless that task is lost
 *   backoff  nothing read or retried before `at`
 *   gone     nothing scheduled: the subscription is paused until resumed
 * Entries read but never sent get a retry member in any case: it is their only schedule.
 */
export function scheduleFor(
  end: End,
  unit: WorkUnit,
  now: number,
  times: { retryBaseMs: number; graceMs: number },
  unsent: number,
): ScheduleChange[] {
  const { retryBaseMs, graceMs } = times;
  const wake = wakeMember(unit);
  const retry = retryMember(unit);
  const forUnsent: ScheduleChange[] = unsent > 0 ? [{ how: "lt", member: retry, at: now }] : [];
  switch (end.kind) {
    case "idle":
      return [...(end.schedule ?? []), ...forUnsent];
    case "full":
      return [{ how: "set", member: wake, at: now + retryBaseMs }, ...forUnsent];
    case "budget": {
      const retryNow: ScheduleChange[] = end.retryNow
        ? [{ how: "set", member: retry, at: now }]
        : [];
      return [{ how: "xx", member: wake, at: now + graceMs }, ...retryNow, ...forUnsent];
    }
    case "backoff":
      return [
        { how: "set", member: wake, at: end.at },
        { how: "set", member: retry, at: end.at },
      ];
    case "gone":
      return dueMembersOf(unit.channel, unit.subscription).map((member) => ({
        how: "rem",
        member,
      }));
  }
}

/** The unit's last write (lua/finish.ts), and its report. */
export async function end(
  ctx: UnitContext,
  tally0: Tally,
  w0: Writes,
  how: End,
  unsent: UnitEntry[],
): Promise<UnitReport> {
  const { w, tally } = await parkDead(ctx, w0, tally0);
  const now = ctx.clock();
  // Ending well, the visit may go on to its next unit; stopping early ends the visit.
  const release = how.kind === "idle" || how.kind === "full" ? ctx.release : true;
  const { ours, health } = await finish(ctx.db, ctx.unit, {
    w,
    token: ctx.lease.token,
    release,
    // Not sent: the attempt each was taken for was never made.
    unsent: unsent.map((e) => ({ entryId: e.entryId, count: e.attempt - 1 })),
    schedule: scheduleFor(
      how,
      ctx.unit,
      now,
      { retryBaseMs: ctx.config.retryBaseMs, graceMs: ctx.graceMs },
      unsent.length,
    ),
    pause: how.kind === "gone",
    health: { now, disableAfterMs: ctx.config.disableAfterMs, wasFailing: ctx.wasFailing },
  });
  ctx.budget.spend();
  ctx.noteHealth(health);
  const kind =
    how.kind === "backoff" || how.kind === "gone"
      ? "stopped"
      : how.kind === "idle"
        ? "idle"
        : how.kind;
  if (!ours) return { ...tally, end: "lost", released: true, next: null };
  const next = nextFor(how, now, ctx.config.retryBaseMs, unsent.length > 0);
  return { ...tally, end: kind, released: release, next };
}

/** The next visit a way of ending asks for (see scheduleFor). */
export function nextFor(end: End, now: number, retryBaseMs: number, unsent: boolean): Next | null {
  switch (end.kind) {
    case "idle":
      if (end.retryAt != null) return { why: "retry", at: end.retryAt };
      return unsent ? { why: "retry", at: now } : null;
    case "full":
      return { why: "retry", at: now + retryBaseMs };
    case "budget":
      return { why: "handover", at: now };
    case "backoff":
      return { why: "retry", at: end.at };
    case "gone":
      return null;
  }
}

/**
 * Parks the dead letters `w` holds (lua/dead-letter.ts), trimming the subscription's dead letters
 * to their bounds. Those Redis refuses to store stay pending: they are retried after one base
 * delay, and the refusal becomes the last error.
 */
export async function parkDead(ctx: UnitContext, w: Writes, tally: Tally) {
  if (w.dead.length === 0) return { w, tally };
  const { deadLetterMaxAgeMs: maxAgeMs, deadLetterMaxMessages: maxMessages } = ctx.config;
  const now = ctx.clock();
  const bounds = { now, maxAgeMs, maxMessages };
  const { refused, reason } = await parkDeadLetters(ctx.db, ctx.unit, w.dead, bounds);
  ctx.budget.spend();
  if (refused.length === 0) return { w: { ...w, dead: [] }, tally };
  const retryAt = Math.min(w.retryAt ?? Number.POSITIVE_INFINITY, now + ctx.config.retryBaseMs);
  const error = `${refused.length} message(s) could not be dead-lettered: ${reason}`;
  return {
    w: { ...w, dead: [], retryAt, state: { ...w.state, error: { at: now, error } } },
    tally: { ...tally, deadLettered: tally.deadLettered - refused.length },
  };
}
