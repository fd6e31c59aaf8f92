// Delivering one unit (a subscription's group on the channel, or on its redrive stream) while the
// caller holds the subscription's lease. Step by step:
//
//   retryPending  messages the endpoint failed, claimed when their backoff is over
//   readBatch     new messages (XREADGROUP >), the previous batch's acks in the same round trip
//   deliver       one signed POST per batch (deliver.ts), judged per message (outcome.ts)
//   close         the last acks, and let go of the unit only if nothing new arrived (close.ts)
//
// An endpoint that fails as a whole backs the unit off (nothing new is read until a retry
// succeeds); messages it rejects one by one wait in the pending list while the rest flows.

import type { Config } from "../shared/config.ts";
import type { Unit } from "../shared/keys.ts";
import type { Db } from "../shared/redis.ts";
import { backOff, pauseGone, setRetry, setWake, type UnitSchedule } from "../shared/schedule.ts";
import { matchesTypes, type Subscription } from "../shared/subscription.ts";
import {
  claim,
  emptySettlement,
  pendingCount,
  pendingEntries,
  type Settlement,
  settle,
  settleAndClose,
  settleAndRead,
  type UnitEntry,
} from "../shared/units.ts";
import type { Budget } from "./budget.ts";
import { deliver, type Endpoint } from "./deliver.ts";
import { type Judgement, judge } from "./outcome.ts";
import { retryDelayMs } from "./retry.ts";

/** Upstash refuses XREADGROUP once a consumer has 1,000 pending entries: never get there. */
export const PENDING_LIMIT = 1000;

export interface UnitContext {
  db: Db;
  config: Config;
  budget: Budget;
  sub: Subscription;
  endpoint: Endpoint;
  /** Whether the lease may still be released by this unit's close (it is the last one). */
  releaseOnClose: boolean;
}

export interface UnitReport {
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
  /** The endpoint failed (or is gone): the caller should not try it again in this visit. */
  stop: boolean;
  /** The close script released the lease. */
  released: boolean;
}

type Progress = UnitReport & { pending: number };

/**
 * Delivers what is due on the unit. `pendingKnownEmpty` skips the pending-count read when the
 * caller knows the pending list is empty (a kick: the last visit closed cleanly).
 */
export async function deliverUnit(
  ctx: UnitContext,
  unit: Unit,
  schedule: UnitSchedule,
  pendingKnownEmpty: boolean,
): Promise<UnitReport> {
  const p: Progress = {
    delivered: 0,
    retried: 0,
    deadLettered: 0,
    filtered: 0,
    stop: false,
    released: false,
    pending: 0,
  };
  const now = Date.now();
  if (schedule.retry !== null && schedule.retry <= now) {
    await retryPending(ctx, unit, p);
    if (p.stop) return p;
  } else if (!pendingKnownEmpty) {
    p.pending = await pendingCount(ctx.db, unit);
    ctx.budget.spend();
    // Pending but unscheduled: a deliverer died between its read and its close. Let the next
    // pass claim them by their idle time like any retry.
    if (p.pending > 0 && schedule.retry === null) await setRetry(ctx.db, unit, now);
  }
  if (schedule.wake !== null && schedule.wake <= Date.now()) await readNew(ctx, unit, p);
  return p;
}

async function readNew(ctx: UnitContext, unit: Unit, p: Progress): Promise<void> {
  const { db, sub, budget } = ctx;
  let settlement = emptySettlement();
  let count = readCount(sub, p.pending);
  if (count === 0) return waitForRoom(ctx, unit, settlement);
  let entries = await settleAndRead(db, unit, settlement, count);
  budget.spend();
  // The last success rides along to the write that ends the drain (close or settle).
  let success: Settlement["success"] = null;
  for (;;) {
    if (entries.length > 0) {
      settlement = await deliverBatch(ctx, unit, entries, p);
      if (p.stop) return;
      success = settlement.success ?? success;
      settlement.success = success;
    }
    const drained = entries.length < count;
    count = readCount(sub, p.pending);
    if (count === 0) return waitForRoom(ctx, unit, settlement);
    if (!budget.allowsBatch()) {
      // Out of budget: the wake member stays due, the next pass carries on.
      await settle(db, unit, settlement);
      return;
    }
    budget.spend();
    if (drained) {
      const fresh = await settleAndClose(db, unit, settlement, count, ctx.releaseOnClose);
      if (fresh === null) {
        p.released = ctx.releaseOnClose;
        return;
      }
      entries = fresh;
    } else {
      entries = await settleAndRead(db, unit, settlement, count);
    }
    settlement = emptySettlement();
  }
}

function readCount(sub: Subscription, pending: number): number {
  return Math.max(0, Math.min(sub.batchSize, PENDING_LIMIT - pending));
}

// The pending list is full: read nothing new until retries make room; look again when the
// earliest retry is due (the retry member's time) or after one base delay.
async function waitForRoom(ctx: UnitContext, unit: Unit, settlement: Settlement) {
  await settle(ctx.db, unit, settlement);
  await setWake(ctx.db, unit, Date.now() + ctx.config.retryBaseMs);
}

/** Sends one batch and returns what to write for it (the caller writes it with the next read). */
async function deliverBatch(
  ctx: UnitContext,
  unit: Unit,
  entries: UnitEntry[],
  p: Progress,
): Promise<Settlement> {
  const settlement = emptySettlement();
  const matching = entries.filter((e) => matchesTypes(ctx.sub.types, e.message.type));
  const filtered = entries.filter((e) => !matching.includes(e));
  settlement.ack.push(...filtered.map((e) => e.entryId));
  p.filtered += filtered.length;
  p.pending += matching.length;
  if (matching.length === 0) return settlement;

  const now = Date.now();
  const result = await deliver(ctx.endpoint, matching, now);
  ctx.budget.spend();
  const j = judge(result, matching, {
    now,
    maxAttempts: ctx.sub.maxAttempts,
    jitterKey: ctx.sub.name,
    policy: ctx.config,
  });
  record(settlement, j, now, p);
  if (!j.endpointFailed) return settlement;
  // The request failed: write now, before backing off or pausing, and hand back nothing to write.
  await settle(ctx.db, unit, settlement);
  ctx.budget.spend();
  if (j.gone) {
    await pauseGone(ctx.db, unit.channel, unit.subscription, j.error ?? "HTTP 410");
    p.stop = true;
  } else if (j.retryAt !== null) {
    await backOff(ctx.db, unit, j.retryAt, false);
    p.stop = true;
  }
  return emptySettlement();
}

function record(settlement: Settlement, j: Judgement, now: number, p: Progress): void {
  const acked = [...j.delivered, ...j.dead.map((d) => d.entry)];
  settlement.ack.push(...acked.map((e) => e.entryId));
  settlement.dead.push(...j.dead);
  if (j.retryAt !== null && !j.endpointFailed) settlement.retryAt = j.retryAt;
  if (j.delivered.length > 0 || (!j.endpointFailed && !j.gone)) {
    settlement.success = { at: now, lastAckedId: j.delivered.at(-1)?.entryId ?? null };
  }
  if (j.error !== null) settlement.failure = { at: now, error: j.error };
  p.delivered += j.delivered.length;
  p.retried += j.retry.length;
  p.deadLettered += j.dead.length;
  p.pending -= acked.length;
}

/** Claims the pending messages whose backoff is over and sends them again, batch by batch. */
async function retryPending(ctx: UnitContext, unit: Unit, p: Progress): Promise<void> {
  const { db, sub, config, budget } = ctx;
  const pending = await pendingEntries(db, unit);
  budget.spend();
  const now = Date.now();
  const dueAt = (e: { idleMs: number; deliveries: number }) =>
    now - e.idleMs + retryDelayMs(e.deliveries, sub.name, config);
  const due = pending.filter((e) => dueAt(e) <= now);
  let nextRetry = Math.min(...pending.filter((e) => dueAt(e) > now).map(dueAt));
  p.pending = pending.length;

  for (let i = 0; i < due.length; i += sub.batchSize) {
    if (!budget.allowsBatch()) {
      nextRetry = now;
      break;
    }
    const slice = due.slice(i, i + sub.batchSize);
    const claimed = await claim(db, unit, slice);
    budget.spend();
    p.pending -= slice.length - claimed.length;
    const settlement = await deliverBatch(ctx, unit, claimed, p);
    if (p.stop) return;
    await settle(db, unit, settlement);
    budget.spend();
    if (settlement.retryAt !== null) nextRetry = Math.min(nextRetry, settlement.retryAt);
  }
  await setRetry(db, unit, p.pending > 0 ? (Number.isFinite(nextRetry) ? nextRetry : now) : null);
}
