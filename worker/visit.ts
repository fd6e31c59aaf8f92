// One visit of one subscription: take its lease, deliver its due units (the redrive stream
// first: its messages are older, then the channel), let the lease go. A throw is a bug or an
// outage: it is caught here, logged with the subscription, and the pass goes on with the others.

import type { Config } from "../shared/config.ts";
import type { SubscriptionSummary } from "../shared/delivery.ts";
import { unitName } from "../shared/keys.ts";
import { type Db, isReplyError } from "../shared/redis.ts";
import { signingSecrets } from "../shared/subscription.ts";
import type { Budget } from "./budget.ts";
import type { UnitReport } from "./end.ts";
import type { WorkUnit } from "./entries.ts";
import { Lease, leaseMs } from "./lease.ts";
import {
  acquireLease,
  type Loaded,
  recoverGroup,
  releaseLease,
  renewLease,
  type UnitSchedule,
  workUnits,
} from "./schedule.ts";
import { deliverUnit } from "./unit.ts";

export interface VisitContext {
  db: Db;
  config: Config;
  budget: Budget;
  clock: () => number;
}

const isDue = (s: UnitSchedule | undefined, now: number) =>
  s !== undefined && ((s.wake !== null && s.wake <= now) || (s.retry !== null && s.retry <= now));

/**
 * Visits the subscription if any of its units is due, the budget allows a visit, and its lease
 * is free (another deliverer on it looks again before it lets go). Null when it did not start.
 */
export async function visit(
  ctx: VisitContext,
  { sub, schedules }: Loaded,
  options: { pendingKnownEmpty: boolean },
): Promise<SubscriptionSummary | null> {
  const { db, budget, clock } = ctx;
  const now = clock();
  const units = workUnits(db, sub).filter((u) => isDue(schedules.get(unitName(u)), now));
  if (units.length === 0 || !budget.startVisit(now)) return null;
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
      return failed(summary, error);
    } finally {
      budget.spend();
    }
    if (!leased) return null;
    const lease = new Lease(token, now, ttl, (t, ms) => renewLease(db, sub, t, ms));
    const endpoint = {
      channel: sub.channel,
      subscription: sub.name,
      group: sub.group,
      url: sub.url,
      timeoutMs: sub.timeoutMs,
      secrets: signingSecrets(sub, now),
    };
    let released = false;
    try {
      for (const [i, unit] of units.entries()) {
        const context = { ...ctx, sub, unit, endpoint, lease, release: i === units.length - 1 };
        const schedule = schedules.get(unitName(unit))!;
        const report = await deliverUnit(context, schedule, options.pendingKnownEmpty).catch(
          (error: unknown) => recover(ctx, unit, sub.id, error),
        );
        summary.delivered += report.delivered;
        summary.retried += report.retried;
        summary.deadLettered += report.deadLettered;
        summary.filtered += report.filtered;
        released = report.released;
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
    return summary;
  } finally {
    budget.endVisit();
  }
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
  return { ...tally, end: goOn ? "idle" : "lost", released: false };
}
