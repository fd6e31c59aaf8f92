// One visit of one subscription: its due units, redrive first (its messages are older), each by a
// deliverer run (drive.ts); then, with a queue, the next visit they want (a hand-over at once, a
// retry or a backoff's end when due), and the events the visit saw. A run never throws: a bug or
// an outage is logged with the subscription, and the pass goes on.

import type { SubscriptionSummary } from "../shared/delivery.ts";
import { type Unit, unitName } from "../shared/keys.ts";
import { unitsOf } from "../shared/subscriptions.ts";
import type { Invocation } from "./deliverer.ts";
import { type Dispatch, taskFor } from "./dispatch.ts";
import { type Driven, drive, type Job } from "./drive.ts";
import { publishEvents } from "./events.ts";
import type { Health } from "./report.ts";
import { type Loaded, recoverGroup, type UnitSchedule } from "./schedule.ts";

export interface VisitContext extends Invocation {
  dispatch: Dispatch;
  /** Bytes one run's takes may hold (batches.ts: readBytesFor the visits running at once). */
  readBytes: number;
}

/** Subrequests a visit keeps back for after its runs: the queue's task and its events. */
const VISIT_RESERVE = 2;
/** The least a visit must be able to spend to be worth starting: a take, a POST, the end. */
const VISIT_START = 3;

/** What became of a visit. */
export type Visited =
  | { kind: "visited"; summary: SubscriptionSummary }
  /** Nothing due yet; `at` is when something is (null: nothing scheduled at all). */
  | { kind: "not-due"; at: number | null }
  /** The invocation's budget could not pay for the visit: left for the next pass or task. */
  | { kind: "no-budget" };

const isDue = (at: number | null | undefined, now: number) => at != null && at <= now;

/** Visits the subscription if any of its units is due and the budget allows. */
export async function visit(ctx: VisitContext, { sub, schedules }: Loaded): Promise<Visited> {
  const { db, clock } = ctx;
  const now = clock();
  const all = unitsOf(sub.channel, sub.name)
    .reverse()
    .map((unit) => ({ unit, at: schedules.get(unitName(unit)) ?? { wake: null, retry: null } }));
  const due = all.filter(({ at }) => isDue(at.wake, now) || isDue(at.retry, now));
  if (due.length === 0) {
    const later = all.flatMap(({ at }) => [at.wake, at.retry]).filter((t) => t !== null);
    return { kind: "not-due", at: later.length === 0 ? null : Math.min(...later) };
  }
  if (!db.meter.allows(now, VISIT_START + VISIT_RESERVE)) return { kind: "no-budget" };
  db.meter.hold(VISIT_RESERVE);
  const summary: SubscriptionSummary = {
    channel: sub.channel,
    subscription: sub.name,
    delivered: 0,
    retried: 0,
    deadLettered: 0,
    filtered: 0,
  };
  const health: Health[] = [];
  let next: { at: number; handover: boolean } | null = null;
  const join = joinOnce(ctx, sub);
  try {
    for (const { unit, at } of due) {
      const job: Job = {
        sub,
        unit,
        look: isDue(at.retry, now),
        read: isDue(at.wake, now),
        wasFailing: at.retry !== null,
      };
      const driven = await drive({ ...ctx, join }, job);
      add(summary, driven);
      health.push(...driven.health);
      if (driven.end === "lost" && driven.error === undefined) await lost(ctx, unit, sub.id);
      if (driven.nextAt !== null && (next === null || driven.nextAt < next.at)) {
        next = { at: driven.nextAt, handover: driven.end === "budget" };
      }
      // A stopped unit ends the visit: its endpoint is failing or gone, or the budget is spent. A
      // redrive stream that is gone had nothing left to deliver: on to the channel.
      const goOn = ["idle", "busy", "full"].includes(driven.end);
      if (!goOn && !(driven.end === "lost" && unit.kind === "redrive" && !driven.error)) break;
    }
  } finally {
    db.meter.unhold(VISIT_RESERVE);
  }
  if (next) await follow(ctx, sub, next);
  await publishEvents(ctx, summary, health);
  return { kind: "visited", summary };
}

function add(summary: SubscriptionSummary, driven: Driven) {
  summary.delivered += driven.tally.delivered;
  summary.retried += driven.tally.retried;
  summary.deadLettered += driven.tally.deadLettered;
  summary.filtered += driven.tally.filtered;
  if (driven.error !== undefined) summary.error ??= driven.error;
}

// The group vanished (NOGROUP): the subscription was deleted (its work dropped), replaced by a
// new one of the same name (this visit was stale: nothing touched), its redrive stream is gone,
// or Redis lost the group (recreated; delivered at the next visit).
async function lost(ctx: VisitContext, unit: Unit, id: string) {
  try {
    const what = await recoverGroup(ctx.db, unit, id, ctx.clock());
    if (what === "recreated")
      console.warn(`consumer group of ${unitName(unit)} was missing: recreated`);
  } catch (error) {
    console.error(`could not recover the group of ${unitName(unit)}:`, error);
  }
}

// With a queue, the subscription's backlog can be delivered by more invocations than this one
// (each keeps at most six connections): a run that finds more than it can send asks for one more,
// once per visit. Without a queue, nothing.
function joinOnce(ctx: VisitContext, sub: { channel: string; name: string }) {
  let asked = false;
  return async () => {
    if (asked || !ctx.dispatch.queued) return;
    asked = true;
    await ctx.dispatch.send([{ task: taskFor(sub, "fanout") }], ctx.clock());
  };
}

// Asks the queue for the visit the units want next. Refused: the cron finds the unit due (a
// hand-over left its wake member due at once).
async function follow(
  ctx: VisitContext,
  sub: { channel: string; name: string },
  next: { at: number; handover: boolean },
): Promise<void> {
  if (!ctx.dispatch.queued) return;
  const task = next.handover ? taskFor(sub, "handover") : taskFor(sub, "retry", next.at);
  await ctx.dispatch.send([{ task, at: next.at }], ctx.clock());
}

export type { UnitSchedule };
