// Delivering one unit (a subscription's group on the channel, or on its redrive stream) while the
// caller holds the subscription's lease. Step by step:
//
//   retryPending  messages the endpoint failed, claimed when their backoff is over (pending.ts)
//   readBatch     new messages (XREADGROUP >), with the previous batch's acks in the same round
//                 trip, and read ahead while the current batch is being POSTed
//   sendBatch     one signed POST per batch, judged per message (batch.ts)
//   close         the last acks, and let go of the unit only if nothing new arrived (close.ts)
//
// An endpoint that fails as a whole backs the unit off (nothing new is read until a retry
// succeeds); messages it rejects one by one wait in the pending list while the rest flows.

import type { Unit } from "../shared/keys.ts";
import { setRetry, setWake, type UnitSchedule } from "../shared/schedule.ts";
import {
  emptySettlement,
  mergeSettlements,
  type Settlement,
  settle,
  settleAndClose,
  settleAndRead,
  withoutState,
} from "../shared/settlement.ts";
import type { Subscription } from "../shared/subscription.ts";
import { pendingCount, type UnitEntry } from "../shared/units.ts";
import { type BatchResult, type Progress, sendBatch, stopUnit, type UnitContext } from "./batch.ts";
import { retryPending } from "./pending.ts";

export type { UnitContext };
export type UnitReport = Omit<Progress, "pending">;

/** Upstash refuses XREADGROUP once a consumer has 1,000 pending entries: never get there. */
export const PENDING_LIMIT = 1000;

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
    pending: 0,
    stop: false,
    released: false,
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

// New messages, batch after batch. Each read takes up to READ_BATCHES batches (fewer Redis round
// trips per message), and while those are being POSTed, the next read is already on its way
// (with the acks of the read before): the POSTs and the Redis round trip overlap instead of
// taking turns. Acks lag one read; a crash loses none of them (unacked messages are sent again).
async function readNew(ctx: UnitContext, unit: Unit, p: Progress): Promise<void> {
  const { db, sub, budget } = ctx;
  let unwritten = emptySettlement();
  let bytes = Number.POSITIVE_INFINITY; // unknown until the first read: read one batch
  let count = readCount(sub, p.pending, bytes);
  if (count === 0) return waitForRoom(ctx, unit, unwritten);
  let current: UnitEntry[];
  [current, unwritten] = await read(ctx, unit, unwritten, count, p);
  for (;;) {
    bytes = averageBytes(current, bytes);
    const drained = current.length < count;
    const nextCount = readCount(sub, p.pending, bytes);
    const batches = Math.ceil(current.length / sub.batchSize);
    let next: UnitEntry[] | null = null;
    if (current.length > 0) {
      let sent: Sent;
      if (!drained && nextCount > 0 && budget.allowsBatch(batches + 1)) {
        [sent, [next, unwritten]] = await Promise.all([
          sendAll(ctx, current, p),
          read(ctx, unit, unwritten, nextCount, p),
        ]);
      } else {
        sent = await sendAll(ctx, current, p);
      }
      unwritten = mergeSettlements(unwritten, sent.settlement);
      if (sent.failed) {
        await stopUnit(ctx, unit, unwritten, sent.failed, [...sent.unsent, ...(next ?? [])]);
        p.stop = true;
        return;
      }
    }
    if (next !== null) {
      current = next;
      count = nextCount;
      continue;
    }
    count = readCount(sub, p.pending, bytes);
    if (count === 0) return waitForRoom(ctx, unit, unwritten);
    if (!budget.allowsBatch()) {
      // Out of budget: the wake member stays due, the next pass carries on.
      await settle(db, unit, unwritten);
      return;
    }
    budget.spend();
    if (drained) {
      const fresh = await settleAndClose(db, unit, unwritten, count, ctx.releaseOnClose);
      if (fresh === null) {
        p.released = ctx.releaseOnClose;
        return;
      }
      p.pending += fresh.length;
      current = fresh;
    } else {
      [current, unwritten] = await read(ctx, unit, unwritten, count, p);
      continue;
    }
    unwritten = emptySettlement();
  }
}

interface Sent {
  settlement: Settlement;
  /** The batch whose request failed, if one did; the entries after it were not sent. */
  failed: BatchResult | null;
  unsent: UnitEntry[];
}

/** POSTs the entries batchSize at a time, in order, stopping at a failed request. */
async function sendAll(ctx: UnitContext, entries: UnitEntry[], p: Progress): Promise<Sent> {
  let settlement = emptySettlement();
  const size = ctx.sub.batchSize;
  for (let i = 0; i < entries.length; i += size) {
    const result = await sendBatch(ctx, entries.slice(i, i + size), p);
    settlement = mergeSettlements(settlement, result.settlement);
    if (result.end !== "ok") return { settlement, failed: result, unsent: entries.slice(i + size) };
  }
  return { settlement, failed: null, unsent: [] };
}

/**
 * Writes what is settled and reads the next entries in one round trip. Returns them and what is
 * still to write: the state change, which waits for the write that ends the drain (once per
 * drain, not per read: at batch size 1 it would be another command per message).
 */
async function read(
  ctx: UnitContext,
  unit: Unit,
  s: Settlement,
  count: number,
  p: Progress,
): Promise<[UnitEntry[], Settlement]> {
  const [writing, state] = withoutState(s);
  const entries = await settleAndRead(ctx.db, unit, writing, count);
  ctx.budget.spend();
  p.pending += entries.length;
  return [entries, { ...emptySettlement(), state }];
}

/**
 * How many messages the next read takes: up to 4 batches (measured: a quarter of the round trips
 * and commands per message at batch size 100, and +40% throughput), but never more than 400
 * messages (a read and the one ahead of it stay far under the pending limit), nor more than
 * READ_BYTES of data as the last read's message sizes suggest (a Worker has 128 MB: large
 * messages are read one batch at a time, as they would be without this).
 */
const READ_BATCHES = 4;
const READ_MESSAGES = 400;
const READ_BYTES = 8 * 1024 * 1024;

function readCount(sub: Subscription, pending: number, bytesPerMessage: number): number {
  const byBytes = Math.floor(READ_BYTES / Math.max(1, bytesPerMessage) / sub.batchSize);
  const byCount = Math.floor(READ_MESSAGES / sub.batchSize);
  const batches = Math.max(1, Math.min(READ_BATCHES, byCount, byBytes));
  return Math.max(0, Math.min(sub.batchSize * batches, PENDING_LIMIT - pending));
}

/** Average data size of the messages just read; unknown (Infinity) before the first read. */
function averageBytes(entries: UnitEntry[], previous: number): number {
  if (entries.length === 0) return previous;
  let bytes = 0;
  for (const entry of entries) bytes += entry.message.data.length;
  return bytes / entries.length;
}

// The pending list is full: read nothing new until retries make room; look again when the
// earliest retry is due (the retry member's time) or after one base delay.
async function waitForRoom(ctx: UnitContext, unit: Unit, settlement: Settlement) {
  await settle(ctx.db, unit, settlement);
  await setWake(ctx.db, unit, Date.now() + ctx.config.retryBaseMs);
}
