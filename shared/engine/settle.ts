// Settling outside a take: a pull consumer's ack, nack and extend, one command each. (A take
// settles what its reader is done with itself, in the same round trip: lua/take.ts.)
//
//   call          commands                                 reply lost
//   ack           XACK (+ XDEL on a redrive stream)        repeated: the repeat counts 0
//   nack/extend   XCLAIM min-idle 0 IDLE t JUSTID          repeated: sets the same time again
//
// An id that is not pending in the queue counts 0: never read, acked already, or in a redrive
// stream that has no group (nothing was ever redriven). A channel queue without its group is a
// subscription deleted meanwhile: NOGROUP, which the caller answers (404 once it looks again).

import { asArray, asNumber, type Db, isReplyError } from "../redis.ts";
import { LEASE_BASE_MS, type Queue } from "./queue.ts";

/** Acks `ids`: how many were pending (and are done now). */
export async function ack(db: Db, q: Queue, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  return notPendingIsZero(q, async () => {
    if (!q.redrive) return asNumber(await db.redis.xack(q.stream, q.group, ids));
    const [acked] = await db.redis
      .pipeline()
      .xack(q.stream, q.group, ids)
      .xdel(q.stream, ids)
      .exec();
    return asNumber(acked);
  });
}

/**
 * Makes pending `ids` visible again in `visibleInMs` (nack: 0 or its delay; extend: the new
 * visibility timeout), held by `holder`, no attempt counted. How many were pending.
 */
export async function nack(
  db: Db,
  q: Queue,
  holder: string,
  ids: string[],
  visibleInMs: number,
): Promise<number> {
  if (ids.length === 0) return 0;
  const idle = String(LEASE_BASE_MS - visibleInMs);
  return notPendingIsZero(q, async () => {
    const claim = ["XCLAIM", q.stream, q.group, holder, "0", ...ids, "IDLE", idle, "JUSTID"];
    return asArray(await db.redis.exec(claim as [string, ...string[]])).length;
  });
}

// A redrive stream without the group (nothing was redriven to it) holds nothing pending.
async function notPendingIsZero(q: Queue, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (error) {
    if (q.redrive && isReplyError(error, "NOGROUP")) return 0;
    throw error;
  }
}
