// Delivering one unit (a subscription's group on the channel, or on its redrive stream) while
// the caller holds the subscription's lease. One delivery, read top to bottom:
//
//   retry due   messages the endpoint failed, claimed once their backoff is over (retry-due.ts)
//   read        new messages (XREADGROUP >), the previous batches' acks in the same round trip,
//               and one read ahead while the current batches are POSTed
//   send        one signed POST per batch, judged per message (send.ts, judge.ts)
//   settle      the outcomes folded into writes (settle.ts), written with the next round trip
//   close       the last writes, and let go only if nothing new arrived (lua/close.ts)
//   finish      or, when the unit stops early, its last writes and schedule (end.ts)
//
// An endpoint that fails as a whole stops the unit: it backs off and reads nothing new meanwhile.
// Messages it rejects one by one wait in the pending list while the rest flows.

import type { Db } from "../shared/redis.ts";
import { cutBatches, largest, readCount } from "./batches.ts";
import {
  addTally,
  type End,
  earlier,
  end,
  type Next,
  parkDead,
  stopFor,
  type Tally,
  type UnitReport,
  zeroTally,
} from "./end.ts";
import type { UnitEntry, WorkUnit } from "./entries.ts";
import { retryDue } from "./retry-due.ts";
import type { UnitSchedule } from "./schedule.ts";
import { canStartBatch, type SendContext, sendAll } from "./send.ts";
import { foldSent, holdState, noWrites, type Writes } from "./settle.ts";
import { close, compareIds, type Health, pendingSummary, read, type Taken } from "./store.ts";

export interface UnitContext extends SendContext {
  db: Db;
  unit: WorkUnit;
  /** Release the lease when the unit ends well (it is the visit's last unit). */
  release: boolean;
  /**
   * How much later than now a unit the budget stops is due again: 0 without a queue (back of
   * the schedule), HANDOVER_GRACE_MS with one (the queue's task carries on; see end.ts).
   */
  graceMs: number;
  /** Bytes one read may take, from the visits running at once (batches.ts: readBytesFor). */
  readBytes: number;
  /** The unit had a retry due when the visit began: its endpoint may be failing. */
  wasFailing: boolean;
  /** Told when the endpoint starts failing, is disabled or recovers (visit.ts: events). */
  noteHealth: (health: Health) => void;
}

/** Where the unit's consumer stands: its pending entries, the last id it holds, sizes seen. */
export interface Position {
  pending: number;
  /** The highest id the consumer holds: a lost read is read again after it (store.ts). */
  cursor: string;
  /** The largest entry seen in this visit; 0 before any. */
  largest: number;
}

const isDue = (at: number | null, now: number) => at !== null && at <= now;

/**
 * Delivers what is due on the unit. `pendingKnownEmpty` skips the pending-list check when the
 * caller knows it is empty (a kick: the last visit closed cleanly and left no retry).
 */
export async function deliverUnit(
  ctx: UnitContext,
  schedule: UnitSchedule,
  pendingKnownEmpty: boolean,
): Promise<UnitReport> {
  const now = ctx.clock();
  let w = noWrites();
  let pos: Position = { pending: 0, cursor: "0-0", largest: 0 };
  let tally = zeroTally();
  let retryAt: number | null = null; // when this unit's next retry is due, as far as it knows
  if (isDue(schedule.retry, now)) {
    const retried = await retryDue(ctx, now, isDue(schedule.wake, now));
    if ("report" in retried) return retried.report;
    ({ w, pos, tally, retryAt } = retried);
  } else if (!pendingKnownEmpty) {
    const summary = await pendingSummary(ctx.db, ctx.unit);
    ctx.budget.spend();
    pos = { pending: summary.count, cursor: summary.maxId ?? "0-0", largest: 0 };
    // Pending, with no retry scheduled: a deliverer died between a read and its close. Made due
    // now, the retry step claims each once its backoff is over.
    if (summary.count > 0 && schedule.retry === null) w = { ...w, retryAt: now };
  }
  if (!isDue(schedule.wake, now))
    return end(ctx, tally, w, { kind: "idle", retryAt: w.retryAt }, []);
  return drain(ctx, tally, w, pos, retryAt ?? w.retryAt);
}

async function drain(
  ctx: UnitContext,
  tally0: Tally,
  w0: Writes,
  pos0: Position,
  retryAt0: number | null,
): Promise<UnitReport> {
  const { sub, config } = ctx;
  // The earliest retry this visit scheduled (writes go out with later round trips): the queue
  // task a drain that ends well asks for.
  let retryAt = retryAt0;
  const noteRetry = (w: Writes) => {
    if (w.retryAt !== null) retryAt = Math.min(retryAt ?? w.retryAt, w.retryAt);
  };
  const wanted = (): Next | null => (retryAt === null ? null : { why: "retry", at: retryAt });
  // A unit that stops for room keeps its earlier retries in view too.
  const stop = async (how: End, unsent: UnitEntry[]) => {
    const report = await end(ctx, tally, w, how, unsent);
    return how.kind === "full" ? { ...report, next: earlier(report.next, wanted()) } : report;
  };
  const limits = { batchSize: sub.batchSize, maxBatchBytes: config.maxBatchBytes };
  // For a read that carries `w`: its acks run first in the same round trip, so they leave the
  // pending list before the read is counted against Upstash's limit.
  const countFor = (p: Position, w: Writes) =>
    readCount({
      batchSize: sub.batchSize,
      pending: p.pending - w.ack.length,
      largestBytes: p.largest || config.maxMessageBytes,
      readBytes: ctx.readBytes,
    });
  let tally = tally0;
  let w = w0;
  noteRetry(w);
  noteRetry(w);
  let pos = pos0;
  let carry: UnitEntry[] = []; // a batch that is not full yet, waiting for more entries
  let count = countFor(pos, w);
  if (count === 0) return stop({ kind: "full" }, []);
  if (!(await canStartBatch(ctx, ctx.clock()))) return stop({ kind: "budget" }, []);
  let got = await readStep(ctx, w, count, pos);
  ({ w, pos } = got);
  let drained = got.entries.length < count;
  let chunk = got.entries;
  for (;;) {
    const { batches, rest } = cutBatches([...carry, ...chunk], limits, drained);
    carry = rest;
    // Read ahead while these are POSTed, if another read is allowed: the POSTs and the Redis
    // round trip overlap instead of taking turns. Acks lag one read; a crash loses none of them
    // (unacked messages are sent again).
    const nextCount = countFor(pos, w);
    const now = ctx.clock();
    const ahead =
      !drained && nextCount > 0 && ctx.budget.allowsBatch(now, batches.length + 1)
        ? readStep(ctx, w, nextCount, pos)
        : null;
    if (ahead) w = { ...noWrites(), state: w.state };
    const [sent, next] = await both(sendAll(ctx, batches), ahead);
    tally = addTally(tally, sent.outcomes);
    ({ w, tally } = await parkDead(ctx, foldSent(w, sent, ctx.unit.kind), tally));
    noteRetry(w);
    if (next) w = { ...w, ack: [...w.ack, ...next.deleted] };
    if (sent.stopped) {
      const unsent = [...sent.unsent, ...carry, ...(next?.entries ?? [])];
      return stop(stopFor(sent.stopped), unsent);
    }
    if (next) {
      pos = next.pos;
      chunk = next.entries;
      drained = next.entries.length < nextCount;
      continue;
    }
    if (drained) {
      count = countFor(pos, w);
      if (count === 0) return stop({ kind: "full" }, []);
      const closed = await close(ctx.db, ctx.unit, {
        w,
        count,
        token: ctx.lease.token,
        release: ctx.release,
        cursor: pos.cursor,
        wasFailing: ctx.wasFailing,
      });
      ctx.budget.spend();
      if (closed.kind === "lost") return { ...tally, end: "lost", released: true, next: null };
      if (closed.recovered) ctx.noteHealth("recovered");
      if (closed.kind === "closed") {
        return { ...tally, end: "drained", released: ctx.release, next: wanted() };
      }
      pos = advance({ ...pos, pending: pos.pending - w.ack.length }, closed.taken);
      w = { ...noWrites(), ack: closed.taken.deleted };
      chunk = closed.taken.entries;
      drained = chunk.length < count;
      continue;
    }
    // Not drained, and no read ahead: the budget, the lease or the pending list stops it here.
    count = countFor(pos, w);
    if (count === 0) return stop({ kind: "full" }, carry);
    if (!(await canStartBatch(ctx, ctx.clock()))) return stop({ kind: "budget" }, carry);
    got = await readStep(ctx, w, count, pos);
    ({ w, pos } = got);
    chunk = got.entries;
    drained = chunk.length < count;
  }
}

/** Writes `w` (its state kept back for the close) and reads `count` new entries. */
async function readStep(ctx: UnitContext, w: Writes, count: number, pos: Position) {
  const [writing, state] = holdState(w);
  const taken = await read(ctx.db, ctx.unit, writing, count, pos.cursor);
  ctx.budget.spend();
  return {
    entries: taken.entries,
    deleted: taken.deleted,
    w: { ...noWrites(), ack: taken.deleted, state },
    pos: advance({ ...pos, pending: pos.pending - writing.ack.length }, taken),
  };
}

function advance(pos: Position, taken: Taken): Position {
  const ids = [...taken.entries.map((e) => e.entryId), ...taken.deleted];
  const cursor = ids.reduce((max, id) => (compareIds(id, max) > 0 ? id : max), pos.cursor);
  return {
    pending: pos.pending + ids.length,
    cursor,
    largest: largest(taken.entries, pos.largest),
  };
}

// Both promises settled, never one left running: a read ahead that fails must not leave batches
// being POSTed after the caller has let go of the lease. Then the first failure is rethrown.
async function both<A, B>(a: Promise<A>, b: Promise<B> | null): Promise<[A, B | null]> {
  const [ra, rb] = await Promise.allSettled([a, b ?? Promise.resolve(null)]);
  if (ra.status === "rejected") throw ra.reason;
  if (rb.status === "rejected") throw rb.reason;
  return [ra.value, rb.value];
}
