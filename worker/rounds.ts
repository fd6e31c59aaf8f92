// A deliverer's round trips with Redis (drive.ts decides when). Each is one request, sent once
// (db.once); after a lost reply, each of its parts again in its safe form (shared/redis.ts):
//
//   part        what                                       reply lost
//   park        dead letters owed (lua/dead-letter.ts)     again: parks only what is pending
//   ledger      what the isolate's runs owe (ledger.ts:     again: its {p}:written key says it
//               records, successes' reports), when due      was written, nothing twice
//   report      a run's own report, at once (final round    again: likewise
//               only, when it has more than a success)
//   take        acks, nacks, then more (lua/take.ts)       again with `cursor`: what the lost
//                                                           take took is the reader's, taken again
//   wake        the final round's wake member change       again: each ends the same
//               (ending.ts)
//
// The final round puts the report before its take: once the take has let the reader go (its
// consumer deleted), everything the run had to write is written.

import type { DeadLetterBounds, Letter } from "../shared/engine/dead-letters.ts";
import { park, parkCall, readPark } from "../shared/engine/dead-letters.ts";
import type { Queue } from "../shared/engine/queue.ts";
import {
  readTake,
  type TakeRequest,
  type TakeResult,
  take,
  takeCall,
} from "../shared/engine/take.ts";
import { retryMember, type Unit, wakeMember } from "../shared/keys.ts";
import {
  type Call,
  type Db,
  isOutcomeUnknown,
  type Pipeline,
  replyValue,
  sendBatch,
} from "../shared/redis.ts";
import type { Subscription } from "../shared/subscription.ts";
import type { WakeChange } from "./ending.ts";
import { ledger, ledgerCalls } from "./ledger.ts";
import { type Health, healthOf, type ReportInput, reportCall } from "./report.ts";
import type { Owed } from "./settle.ts";

/** Who makes the round trips: a reader of a subscription's unit. */
export interface Reader {
  db: Db;
  sub: Subscription;
  unit: Unit;
  q: Queue;
  /** Its consumer name (shared/engine/queue.ts: newReader). */
  name: string;
  bounds: DeadLetterBounds;
}

export interface Round {
  taken: TakeResult;
  /** Dead letters Redis refused to store (still pending), and why. */
  refused: Letter[];
  refusal: string;
}

/** A take carrying what is owed: the dead letters, the ledger when due, the acks and nacks. */
export async function takeRound(
  r: Reader,
  owed: Owed,
  req: TakeRequest,
  cursor: string,
): Promise<Round> {
  const { db } = r;
  const parking = parkPart(r, owed, req.now);
  const ride = riding(r, owed, req.now);
  const calls = [...parking, ...ride.calls, takeCall(db, r.q, req)];
  try {
    const replies = await sendBatch(db.once, calls);
    return {
      ...parked(owed, parking.length > 0 ? replies[0] : undefined),
      taken: readTake(replyValue(replies.at(-1))),
    };
  } catch (error) {
    if (!isOutcomeUnknown(error)) {
      ledger.restore(ride.owing);
      throw error;
    }
  }
  const again = await parkAgain(r, owed, req.now);
  await sendBatch(db.redis, ride.calls);
  return { ...again, taken: await take(db.redis, db, r.q, { ...req, cursor }) };
}

/**
 * The run's last round: what is owed, its report when it has one of its own to write at once
 * (else the ledger has it), and a take (`req.end`) that may still find more (then the run goes
 * on) or, finding nothing, sets the unit's retry member and lets the reader go; then the wake
 * member's change. After a lost reply, the take again with `cursor`, as takeRound's.
 */
export async function finalRound(
  r: Reader,
  owed: Owed,
  req: TakeRequest,
  cursor: string,
  report: ReportInput | null,
  wake: WakeChange | null,
): Promise<Round & { health: Health }> {
  const { db } = r;
  // Parked first, on its own: the take lets the reader go only once it holds nothing.
  const refused = owed.dead.length > 0 ? await parkAgain(r, owed, req.now) : noneRefused;
  // A report of its own takes the records its subscription owes along (in order); the rest of
  // the ledger rides when due.
  const records = report ? [...ledger.takeRecords(r.sub), ...owed.records] : [];
  const ride = riding(r, report ? { ...owed, records: [] } : owed, req.now);
  const reports = report ? [reportCall(db, r.sub, report, records)] : [];
  const n = ride.calls.length;
  const after = wakeCalls(r, wake);
  const calls = [...ride.calls, ...reports, takeCall(db, r.q, req), ...after];
  try {
    const replies = await sendBatch(db.once, calls);
    const health = report ? healthOf(replyValue(replies[n])) : null;
    return { ...refused, health, taken: readTake(replyValue(replies[n + reports.length])) };
  } catch (error) {
    if (!isOutcomeUnknown(error)) {
      // Nothing of it ran: the records are the ledger's again (the report stays the run's).
      ledger.restore(ride.owing);
      if (records.length > 0) ledger.owe(r.sub, req.now, { records });
      throw error;
    }
  }
  // Each repeatable as it is (the ledger's and the report by their write ids, the take by its
  // cursor): one request that repeats on a lost reply.
  const again = await sendBatch(db.redis, [
    ...ride.calls,
    ...reports,
    takeCall(db, r.q, { ...req, cursor }),
    ...after,
  ]);
  return {
    ...refused,
    health: report ? healthOf(replyValue(again[n])) : null,
    taken: readTake(replyValue(again[n + reports.length])),
  };
}

/**
 * The run's records owed to the ledger, and the ledger's write when it is due (old or much),
 * carried by this round.
 */
function riding(r: Reader, owed: Owed, now: number) {
  if (owed.records.length > 0) ledger.owe(r.sub, now, { records: owed.records });
  const owing = ledger.due(now) ? ledger.takeAll() : [];
  return { owing, calls: ledgerCalls(r.db, owing) };
}

const noneRefused = { refused: [] as Letter[], refusal: "" };

function parkPart(r: Reader, owed: Owed, now: number): Call[] {
  if (owed.dead.length === 0) return [];
  return [parkCall(r.db, r.q, r.name, owed.dead, { ...r.bounds, now })];
}

function parked(owed: Owed, reply: Parameters<typeof replyValue>[0]) {
  if (reply === undefined) return noneRefused;
  const { parked: n, refusal } = readPark(replyValue(reply));
  return { refused: owed.dead.slice(n), refusal };
}

async function parkAgain(r: Reader, owed: Owed, now: number) {
  if (owed.dead.length === 0) return noneRefused;
  const { parked: n, refusal } = await park(r.db, r.q, r.name, owed.dead, { ...r.bounds, now });
  return { refused: owed.dead.slice(n), refusal };
}

// The wake member's change, as calls (ending.ts says which).
function wakeCalls(r: Reader, change: WakeChange | null): Call[] {
  if (!change) return [];
  const due = r.db.keys.due();
  const wake = wakeMember(r.unit);
  switch (change.how) {
    case "unschedule":
      return [{ add: (p: Pipeline) => p.zrem(due, wake, retryMember(r.unit)) }];
    case "gt":
      return [
        { add: (p: Pipeline) => p.zadd(due, { gt: true }, { score: change.at, member: wake }) },
      ];
    case "xx":
      return [
        { add: (p: Pipeline) => p.zadd(due, { xx: true }, { score: change.at, member: wake }) },
      ];
    case "set":
      return [{ add: (p: Pipeline) => p.zadd(due, { score: change.at, member: wake }) }];
  }
}
