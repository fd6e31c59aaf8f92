// The retry step of a unit: messages the endpoint failed wait in the group's pending list, and
// one is due when its idle time (since its last send) reaches the backoff for its delivery count
// (retry.ts). Due ones are claimed a batch at a time (XCLAIM, only if still that idle, counting
// the attempt) and sent again; each claim carries the previous batch's writes. At the end the
// unit's retry member is set to exactly when the next pending message is due, or removed.

import { retryMember } from "../shared/keys.ts";
import { cutBatches, largest, readCount } from "./batches.ts";
import { addTally, end, parkDead, stopFor, type Tally, type UnitReport, zeroTally } from "./end.ts";
import type { UnitEntry } from "./entries.ts";
import { retryDelayMs } from "./retry.ts";
import { canStartBatch, sendAll } from "./send.ts";
import { foldSent, holdState, noWrites, type Writes } from "./settle.ts";
import { type Claim, claim, compareIds, type PendingEntry, pendingList, settle } from "./store.ts";
import type { Position, UnitContext } from "./unit.ts";

type Retried =
  | { report: UnitReport }
  | { w: Writes; pos: Position; tally: Tally; retryAt: number | null };

/**
 * Retries what is due at `now`. When the unit will read new messages next (`reading`), the
 * retry member is written at once and the rest of the writes ride with the first read;
 * otherwise everything goes in the unit's last write.
 */
export async function retryDue(ctx: UnitContext, now: number, reading: boolean): Promise<Retried> {
  const { sub, config } = ctx;
  const list = await pendingList(ctx.db, ctx.unit);
  ctx.budget.spend();
  const delay = (e: PendingEntry) => retryDelayMs(e.deliveries, sub.name, config);
  const dueAt = (e: PendingEntry) => now - e.idleMs + delay(e);
  const due = list.filter((e) => dueAt(e) <= now);
  let later = Math.min(...list.filter((e) => dueAt(e) > now).map(dueAt));
  let tally = zeroTally();
  let w = noWrites();
  let largestSeen = 0;
  let missing = 0;
  for (let i = 0; i < due.length; ) {
    if (!(await canStartBatch(ctx, ctx.clock()))) {
      return { report: await end(ctx, tally, w, { kind: "budget", retryNow: true }, []) };
    }
    // A batch's worth, claimed in slices that stay within the read size by bytes.
    const claimed: UnitEntry[] = [];
    while (i < due.length && claimed.length < sub.batchSize) {
      const n = Math.min(
        sub.batchSize - claimed.length,
        readCount({
          batchSize: sub.batchSize,
          pending: 0,
          largestBytes: largestSeen || config.maxMessageBytes,
          readBytes: ctx.readBytes,
        }),
      );
      const slice = due.slice(i, i + n);
      i += slice.length;
      const [writing, state] = holdState(w);
      const got = await claim(ctx.db, ctx.unit, writing, claimsOf(slice, delay));
      ctx.budget.spend();
      w = { ...noWrites(), state };
      missing += slice.length - got.entries.length;
      largestSeen = largest(got.entries, largestSeen);
      claimed.push(...got.entries);
    }
    const limits = { batchSize: sub.batchSize, maxBatchBytes: config.maxBatchBytes };
    const sent = await sendAll(ctx, cutBatches(claimed, limits, true).batches);
    tally = addTally(tally, sent.outcomes);
    ({ w, tally } = await parkDead(ctx, foldSent(w, sent, ctx.unit.kind), tally));
    // Written with the next claim, but still pending after it: remembered for the end.
    if (w.retryAt !== null) later = Math.min(later, w.retryAt);
    if (sent.stopped) {
      const how =
        sent.stopped === "budget"
          ? ({ kind: "budget", retryNow: true } as const)
          : stopFor(sent.stopped);
      return { report: await end(ctx, tally, w, how, sent.unsent) };
    }
  }
  // What stays pending: those not due yet, those rejected again, and any a claim did not return
  // (another deliverer touched them: looked at again after one base delay).
  if (missing > 0) later = Math.min(later, now + config.retryBaseMs);
  const next = later;
  const member = retryMember(ctx.unit);
  const change = Number.isFinite(next)
    ? ({ how: "set", member, at: next } as const)
    : ({ how: "rem", member } as const);
  const retried = { ...w, retryAt: null };
  const retryAt = Number.isFinite(next) ? next : null;
  if (!reading) {
    const idle = { kind: "idle", schedule: [change], retryAt } as const;
    return { report: await end(ctx, tally, retried, idle, []) };
  }
  const [writing, state] = holdState(retried);
  // The records ride with the first read (settle is repeated on a lost reply: they would be
  // logged twice).
  await settle(ctx.db, ctx.unit, { ...writing, attempts: [] }, [change]);
  ctx.budget.spend();
  const pending = list.length - tally.delivered - tally.filtered - tally.deadLettered;
  const cursor = list.reduce((max, e) => (compareIds(e.entryId, max) > 0 ? e.entryId : max), "0-0");
  return {
    w: { ...noWrites(), attempts: writing.attempts, state },
    pos: { pending, cursor, largest: largestSeen },
    tally,
    retryAt,
  };
}

// One XCLAIM per delivery count: a claim's min-idle is that count's backoff (only what is really
// idle is taken), and its RETRYCOUNT the count after this attempt.
function claimsOf(entries: PendingEntry[], delay: (e: PendingEntry) => number): Claim[] {
  const byCount = new Map<number, PendingEntry[]>();
  for (const e of entries) byCount.set(e.deliveries, [...(byCount.get(e.deliveries) ?? []), e]);
  return [...byCount].map(([deliveries, group]) => ({
    ids: group.map((e) => e.entryId),
    minIdleMs: Math.max(0, delay(group[0]!) - CLAIM_SLACK_MS),
    count: deliveries + 1,
  }));
}

// The idle time XPENDING reported, and the one XCLAIM checks a moment later, are read off the
// same Redis clock; this much slack keeps a message due by the former from being refused by the
// latter for a rounding of milliseconds.
const CLAIM_SLACK_MS = 5;
