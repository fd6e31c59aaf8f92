// One visit of one subscription: take its lease, deliver its due units (the redrive stream
// first: its messages are older, then the channel), let the lease go, and, with a queue, ask for
// the next visit the units want (a hand-over at once, or a retry when it is due). A throw is a
// bug or an outage: it is caught here, logged with the subscription, and the pass goes on.

import type { Config } from "../shared/config.ts";
import type { SubscriptionSummary } from "../shared/delivery.ts";
import { unitName, wakeMember } from "../shared/keys.ts";
import { type Db, isReplyError } from "../shared/redis.ts";
import { signingSecrets } from "../shared/subscription.ts";
import type { Budget } from "./budget.ts";
import { type Dispatch, taskFor } from "./dispatch.ts";
import { earlier, type Next, type UnitReport } from "./end.ts";
import type { WorkUnit } from "./entries.ts";
import { publishEvents } from "./events.ts";
import { Lease, leaseMs } from "./lease.ts";
import type { Pacer } from "./pace.ts";
import {
  acquireLease,
  type Loaded,
  recoverGroup,
  releaseLease,
  renewLease,
  type UnitSchedule,
  workUnits,
} from "./schedule.ts";
import type { Health } from "./store.ts";
import { deliverUnit } from "./unit.ts";

export interface VisitContext {
  db: Db;
  config: Config;
  budget: Budget;
  clock: () => number;
  sleep: (ms: number) => Promise<void>;
  /** The isolate's last POST start of each paced subscription (pace.ts). */
  pace: Pacer;
  dispatch: Dispatch;
  /** Bytes one read may take (batches.ts: readBytesFor the visits running at once). */
  readBytes: number;
}

/**
 * How long a unit handed over to the queue stays out of the cron's sight: its task carries on
 * at once, and only if that task is lost does a cron pass pick the unit up, this much later.
 */
export const HANDOVER_GRACE_MS = 60_000;

/** What became of a visit. */
export type Visited =
  | { kind: "visited"; summary: SubscriptionSummary }
  /** Nothing due yet; `at` is when something is (null: nothing scheduled at all). */
  | { kind: "not-due"; at: number | null }
  /** Another deliverer holds the lease (it looks again before it lets go). */
  | { kind: "busy" }
  /** The budget could not pay for the visit's end: left for the next pass or task. */
  | { kind: "no-budget" };

/** When the unit is next due: its earlier of wake and retry; null when it has neither. */
function dueAt(s: UnitSchedule | undefined): number | null {
  const times = [s?.wake ?? null, s?.retry ?? null].filter((t) => t !== null);
  return times.length === 0 ? null : Math.min(...times);
}

/** Visits the subscription if any of its units is due, the budget allows, and its lease is free. */
export async function visit(
  ctx: VisitContext,
  { sub, schedules }: Loaded,
  options: { pendingKnownEmpty: boolean },
): Promise<Visited> {
  const { db, budget, clock, dispatch } = ctx;
  const now = clock();
  const all = workUnits(db, sub).map((u) => ({ u, at: dueAt(schedules.get(unitName(u))) }));
  const units = all.flatMap(({ u, at }) => (at !== null && at <= now ? [u] : []));
  if (units.length === 0) {
    const later = all.flatMap(({ at }) => (at === null ? [] : [at]));
    return { kind: "not-due", at: later.length === 0 ? null : Math.min(...later) };
  }
  if (!budget.startVisit(now)) return { kind: "no-budget" };
  const summary: SubscriptionSummary = {
    channel: sub.channel,
    subscription: sub.name,
    delivered: 0,
    retried: 0,
    deadLettered: 0,
    filtered: 0,
  };
  try {
    const token = crypto.randomUUID();
    const ttl = leaseMs(sub.timeoutMs);
    let leased: boolean;
    try {
      leased = await acquireLease(db, sub, token, ttl);
    } catch (error) {
      // The SET may have run with its reply lost: give the lease back, or the subscription would
      // wait for it to expire. The pass goes on with the others.
      await releaseLease(db, sub, token).catch(() => {});
      return { kind: "visited", summary: failed(summary, error) };
    } finally {
      budget.spend();
    }
    if (!leased) return { kind: "busy" };
    const lease = new Lease(token, now, ttl, (t, ms) => renewLease(db, sub, t, ms));
    const endpoint = {
      channel: sub.channel,
      subscription: sub.name,
      group: sub.group,
      url: sub.url,
      timeoutMs: sub.timeoutMs,
      secrets: signingSecrets(sub, now),
    };
    const graceMs = dispatch.queued ? HANDOVER_GRACE_MS : 0;
    let released = false;
    let next: Next | null = null;
    const health: Health[] = [];
    const noteHealth = (h: Health) => {
      if (h !== null) health.push(h);
    };
    try {
      for (const [i, unit] of units.entries()) {
        const release = i === units.length - 1;
        const schedule = schedules.get(unitName(unit))!;
        const wasFailing = schedule.retry !== null;
        const context = {
          ...ctx,
          sub,
          unit,
          endpoint,
          lease,
          release,
          graceMs,
          wasFailing,
          noteHealth,
        };
        const report = await deliverUnit(context, schedule, options.pendingKnownEmpty).catch(
          (error: unknown) => recover(ctx, unit, sub.id, error),
        );
        summary.delivered += report.delivered;
        summary.retried += report.retried;
        summary.deadLettered += report.deadLettered;
        summary.filtered += report.filtered;
        released = report.released;
        next = earlier(next, report.next);
        if (!["drained", "idle", "full"].includes(report.end)) break;
      }
    } catch (error) {
      failed(summary, error);
    } finally {
      if (!released) {
        await releaseLease(db, sub, token).catch(() => {});
        budget.spend();
      }
    }
    if (next) await follow(ctx, sub, next, units);
    await publishEvents(ctx, summary, health);
    return { kind: "visited", summary };
  } finally {
    budget.endVisit();
  }
}

// Asks the queue for the visit the units want next. A hand-over the queue refuses falls back to
// the cron: the wake members it moved `graceMs` ahead come back to now.
async function follow(
  ctx: VisitContext,
  sub: { channel: string; name: string },
  next: Next,
  units: WorkUnit[],
): Promise<void> {
  if (!ctx.dispatch.queued) return;
  const now = ctx.clock();
  const sent = await ctx.dispatch.send([{ task: taskFor(sub, next.why), at: next.at }], now);
  ctx.budget.spend();
  if (sent || next.why !== "handover") return;
  const due = ctx.db.keys.due();
  await Promise.all(
    units.map((u) => ctx.db.redis.zadd(due, { xx: true }, { score: now, member: wakeMember(u) })),
  ).catch(() => {});
}

/** A throw is a bug or an outage: logged with the subscription, and in its summary. */
function failed(summary: SubscriptionSummary, error: unknown): SubscriptionSummary {
  summary.error = error instanceof Error ? error.message : String(error);
  console.error(`delivery to ${summary.channel}/${summary.subscription} failed:`, error);
  return summary;
}

// NOGROUP: the group vanished. The subscription was deleted (drop its work), replaced by a new
// one of the same name (this visit is stale: stop, touch nothing), its redrive stream is gone
// (drop that unit, go on), or Redis lost the group (recreated; the next pass delivers).
async function recover(
  ctx: VisitContext,
  unit: WorkUnit,
  id: string,
  error: unknown,
): Promise<UnitReport> {
  if (!isReplyError(error, "NOGROUP")) throw error;
  const what = await recoverGroup(ctx.db, unit, id, ctx.clock());
  if (what === "recreated")
    console.warn(`consumer group of ${unitName(unit)} was missing: recreated`);
  const goOn = what === "gone" && unit.kind === "redrive";
  const tally = { delivered: 0, retried: 0, deadLettered: 0, filtered: 0 };
  return { ...tally, end: goOn ? "idle" : "lost", released: false, next: null };
}
