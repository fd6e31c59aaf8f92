// One visit of one subscription, under its lease: its redrive unit first (older messages), then
// the channel. A throw is a bug or an outage: it is caught here, logged with the subscription,
// and the pass goes on with the others.

import type { Config } from "../shared/config.ts";
import type { SubscriptionSummary } from "../shared/delivery.ts";
import type { Unit } from "../shared/keys.ts";
import { unitName } from "../shared/keys.ts";
import { type Db, isReplyError } from "../shared/redis.ts";
import { recoverGroup, releaseLease, setWake, type UnitSchedule } from "../shared/schedule.ts";
import { type Subscription, signingSecrets } from "../shared/subscription.ts";
import { unitsOf } from "../shared/subscriptions.ts";
import type { Budget } from "./budget.ts";
import { deliverUnit, type UnitReport } from "./unit.ts";

export interface Lease {
  acquiredAt: number;
  ttlMs: number;
}

// The lease is only released while it is surely still ours: with this much of it left. Past
// that, it is left to expire, so a slow pass never deletes the lease of the pass after it.
const LEASE_SAFETY_MS = 5_000;

export async function visit(
  db: Db,
  config: Config,
  budget: Budget,
  sub: Subscription,
  schedules: Map<string, UnitSchedule>,
  lease: Lease,
  options: { pendingKnownEmpty: boolean },
): Promise<SubscriptionSummary> {
  const summary: SubscriptionSummary = {
    channel: sub.channel,
    subscription: sub.name,
    delivered: 0,
    retried: 0,
    deadLettered: 0,
    filtered: 0,
  };
  const now = Date.now();
  const due = (s: UnitSchedule | undefined) =>
    s !== undefined && ((s.wake !== null && s.wake <= now) || (s.retry !== null && s.retry <= now));
  const units = unitsOf(sub.channel, sub.name)
    .reverse()
    .filter((unit) => due(schedules.get(unitName(unit))));
  const endpoint = {
    channel: sub.channel,
    subscription: sub.name,
    url: sub.url,
    timeoutMs: sub.timeoutMs,
    secrets: signingSecrets(sub, now),
  };
  const leaseIsOurs = () => Date.now() < lease.acquiredAt + lease.ttlMs - LEASE_SAFETY_MS;
  let released = false;
  try {
    for (const [i, unit] of units.entries()) {
      const schedule = schedules.get(unitName(unit))!;
      const context = {
        db,
        config,
        budget,
        sub,
        endpoint,
        releaseOnClose: i === units.length - 1 && leaseIsOurs(),
      };
      const report = await deliverUnit(context, unit, schedule, options.pendingKnownEmpty).catch(
        (error: unknown) => recover(db, unit, error),
      );
      summary.delivered += report.delivered;
      summary.retried += report.retried;
      summary.deadLettered += report.deadLettered;
      summary.filtered += report.filtered;
      released = report.released;
      if (report.stop) break;
    }
  } catch (error) {
    summary.error = error instanceof Error ? error.message : String(error);
    console.error(`delivery to ${sub.channel}/${sub.name} failed:`, error);
  } finally {
    if (!released && leaseIsOurs()) {
      await releaseLease(db, sub.channel, sub.name).catch(() => {});
    }
  }
  return summary;
}

// NOGROUP: the group vanished. The subscription was deleted (drop its work), its redrive stream
// is gone (drop that unit, go on), or Redis lost the group (recreate it and come back on the next
// pass). Anything else is rethrown.
async function recover(db: Db, unit: Unit, error: unknown): Promise<UnitReport> {
  if (!isReplyError(error, "NOGROUP")) throw error;
  const recreated = await recoverGroup(db, unit);
  if (recreated) {
    console.warn(`consumer group of ${unitName(unit)} was missing: recreated`);
    await setWake(db, unit, Date.now());
  }
  const report = { delivered: 0, retried: 0, deadLettered: 0, filtered: 0, released: false };
  return { ...report, stop: unit.kind === "main" };
}
