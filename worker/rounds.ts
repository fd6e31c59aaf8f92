// A deliverer's round trips with Redis (drive.ts decides when). Each is one request, sent once
// (db.once); after a lost reply, each of its parts again in its safe form (shared/redis.ts):
//
//   part        what                                       reply lost
//   park        dead letters owed (lua/dead-letter.ts)     again: parks only what is pending
//   records     XADDs, 10 requests each (report.ts)       again through lua/record.ts: once
//   report      the run's counters, state, health          again: its {p}:written key says it
//               (final round only)                          was written, nothing twice
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
import {
  type Health,
  healthOf,
  type ReportInput,
  recordAgain,
  recordCalls,
  reportCall,
} from "./report.ts";
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

/** A take carrying what is owed: the dead letters, the records, the acks and nacks (in `req`). */
export async function takeRound(
  r: Reader,
  owed: Owed,
  req: TakeRequest,
  cursor: string,
): Promise<Round> {
  const { db } = r;
  const parking = parkPart(r, owed, req.now);
  const calls = [...parking, ...recordCalls(db, r.sub, owed.records), takeCall(db, r.q, req)];
  try {
    const replies = await sendBatch(db.once, calls);
    return {
      ...parked(owed, parking.length > 0 ? replies[0] : undefined),
      taken: readTake(replyValue(replies.at(-1))),
    };
  } catch (error) {
    if (!isOutcomeUnknown(error)) throw error;
  }
  const again = await parkAgain(r, owed, req.now);
  await recordAgain(db, r.sub, owed.records);
  return { ...again, taken: await take(db.redis, db, r.q, { ...req, cursor }) };
}

/**
 * The run's last round: what is owed, its report, and a take (`req.end`) that may still find
 * more (then the run goes on: its next report covers what it does from there) or, finding
 * nothing, sets the unit's retry member and lets the reader go; then the wake member's change.
 * After a lost reply, the take again with `cursor`, as takeRound's.
 */
export async function finalRound(
  r: Reader,
  owed: Owed,
  req: TakeRequest,
  cursor: string,
  report: ReportInput,
  wake: WakeChange | null,
): Promise<Round & { health: Health }> {
  const { db } = r;
  // Parked first, on its own: the take lets the reader go only once it holds nothing.
  const refused = owed.dead.length > 0 ? await parkAgain(r, owed, req.now) : noneRefused;
  const records = recordCalls(db, r.sub, owed.records);
  const n = records.length;
  const after = wakeCalls(r, wake);
  const calls = [...records, reportCall(db, r.sub, report), takeCall(db, r.q, req), ...after];
  try {
    const replies = await sendBatch(db.once, calls);
    const health = healthOf(replyValue(replies[n]));
    return { ...refused, health, taken: readTake(replyValue(replies[n + 1])) };
  } catch (error) {
    if (!isOutcomeUnknown(error)) throw error;
  }
  await recordAgain(db, r.sub, owed.records);
  // Each repeatable as it is (the report by its writeId, the take by its cursor): one request
  // that repeats on a lost reply.
  const again = await sendBatch(db.redis, [
    reportCall(db, r.sub, report),
    takeCall(db, r.q, { ...req, cursor }),
    ...after,
  ]);
  return {
    ...refused,
    health: healthOf(replyValue(again[0])),
    taken: readTake(replyValue(again[1])),
  };
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
