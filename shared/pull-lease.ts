// Leases of pulled messages, and the calls that end or move them: ack, nack, extend.
//
// A pulled message is pending in the subscription's consumer group, owned by the consumer that
// pulled it, until it is acked. Its lease is kept in the pending entry itself, as its idle time:
// handing an entry out sets it (XCLAIM IDLE) to LEASE_BASE_MS - visibilityTimeoutMs, so the
// entry's idle time reaches LEASE_BASE_MS exactly when its visibility timeout runs out. "Which
// leases ran out" is then one question to the whole group, whatever timeouts the pulls asked for:
// XPENDING IDLE LEASE_BASE_MS. The base is above the longest timeout (12 h), so a fresh lease is
// never expired; IDLE is counted on Redis's clock, so no Worker's clock is trusted. An entry
// XREADGROUP has just taken (idle 0) holds a lease of LEASE_BASE_MS until its lease is set, which
// lua/pull.ts does in the same script, and shared/pull.ts right after its own reads.
//
// A pull subscription's messages wait in two queues, each a stream read with the subscription's
// group: the channel, and its redrive stream (dead letters put back, shared/pull-redrive.ts),
// whose entry ids all start "0-" so that an id alone says which queue it is in.
//
//   call        commands                                reply lost
//   ack         XACK (+ XDEL on the redrive stream)     repeated: the repeat counts 0
//   nack/extend XCLAIM min-idle 0 IDLE t JUSTID         repeated: sets the same idle time

import { asArray, asNumber, type Db } from "./redis.ts";
import type { Subscription } from "./subscription.ts";

/** A stream a pull subscription's messages wait in, read with its group. */
export interface Queue {
  stream: string;
  group: string;
  /** The redrive stream: it keeps nothing that is done, so an ack deletes the entry too. */
  redrive: boolean;
}

export const channelQueue = (db: Db, sub: Subscription): Queue => ({
  stream: db.keys.channel(sub.channel),
  group: sub.group,
  redrive: false,
});

export const redriveQueue = (db: Db, sub: Subscription): Queue => ({
  stream: db.keys.redrive(sub.channel, sub.name),
  group: sub.group,
  redrive: true,
});

/** Redriven messages' ids: "0-<n>", which no publish makes (lua/redrive.ts). */
export const isRedrivenId = (id: string) => id.startsWith("0-");

/** Ids by the queue they belong to. */
export function splitIds(ids: string[]): { channel: string[]; redrive: string[] } {
  const channel: string[] = [];
  const redrive: string[] = [];
  for (const id of ids) (isRedrivenId(id) ? redrive : channel).push(id);
  return { channel, redrive };
}

/** Longest visibility timeout (and nack delay) a pull may ask for: 12 h, as Pub/Sub's lease. */
export const MAX_VISIBILITY_MS = 43_200_000;
/** Idle time at which a lease runs out (see the header): above MAX_VISIBILITY_MS. */
export const LEASE_BASE_MS = 86_400_000;

/** The idle time that makes a lease run out in `visibilityMs`. */
export const leaseIdle = (visibilityMs: number) => String(LEASE_BASE_MS - visibilityMs);

/** XACK (and XDEL on the redrive stream): how many of `ids` were pending (and are acked now). */
export async function ackIds(db: Db, q: Queue, ids: string[]): Promise<number> {
  if (!q.redrive) return asNumber(await db.redis.xack(q.stream, q.group, ids));
  const [acked] = await db.redis.pipeline().xack(q.stream, q.group, ids).xdel(q.stream, ids).exec();
  return asNumber(acked);
}

/**
 * Sets the lease of pending `ids` to run out `inMs` from now (nack: 0 or its delay; extend: the new
 * visibility timeout; a fresh read: its visibility timeout), owned by `consumer`. Returns how many
 * were pending.
 */
export async function setLease(
  db: Db,
  q: Queue,
  consumer: string,
  ids: string[],
  inMs: number,
): Promise<number> {
  return asArray(await claimLeased(db, q, consumer, ids, inMs, 0, "JUSTID")).length;
}

/**
 * XCLAIM of `ids` for `consumer` (those idle at least `minIdleMs`), with the idle time that
 * makes their lease run out in `visibilityMs`. Every lease set outside lua/pull.ts is set here.
 */
export function claimLeased(
  db: Db,
  q: Queue,
  consumer: string,
  ids: string[],
  visibilityMs: number,
  minIdleMs = 0,
  ...justId: ["JUSTID"] | []
) {
  return db.redis.exec([
    "XCLAIM",
    q.stream,
    q.group,
    consumer,
    String(minIdleMs),
    ...ids,
    "IDLE",
    leaseIdle(visibilityMs),
    ...justId,
  ]);
}
