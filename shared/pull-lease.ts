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
//   call        commands                                reply lost
//   ack         XACK                                    repeated: the repeat counts 0
//   nack/extend XCLAIM min-idle 0 IDLE t JUSTID         repeated: sets the same idle time

import { asArray, asNumber, type Db } from "./redis.ts";
import type { Subscription } from "./subscription.ts";

/** Longest visibility timeout (and nack delay) a pull may ask for: 12 h, as Pub/Sub's lease. */
export const MAX_VISIBILITY_MS = 43_200_000;
/** Idle time at which a lease runs out (see the header): above MAX_VISIBILITY_MS. */
export const LEASE_BASE_MS = 86_400_000;

/** The idle time that makes a lease run out in `visibilityMs`. */
export const leaseIdle = (visibilityMs: number) => String(LEASE_BASE_MS - visibilityMs);

/** XACK: how many of `ids` were pending (and are acked now). */
export async function ackIds(db: Db, sub: Subscription, ids: string[]): Promise<number> {
  return asNumber(await db.redis.xack(db.keys.channel(sub.channel), sub.group, ids));
}

/**
 * Sets the lease of pending `ids` to run out `inMs` from now (nack: 0 or its delay; extend: the new
 * visibility timeout; a fresh read: its visibility timeout), owned by `consumer`. Returns how many
 * were pending.
 */
export async function setLease(
  db: Db,
  sub: Subscription,
  consumer: string,
  ids: string[],
  inMs: number,
): Promise<number> {
  return asArray(await claimLeased(db, sub, consumer, ids, inMs, 0, "JUSTID")).length;
}

/**
 * XCLAIM of `ids` for `consumer` (those idle at least `minIdleMs`), with the idle time that
 * makes their lease run out in `visibilityMs`. Every lease set outside lua/pull.ts is set here.
 */
export function claimLeased(
  db: Db,
  sub: Subscription,
  consumer: string,
  ids: string[],
  visibilityMs: number,
  minIdleMs = 0,
  ...justId: ["JUSTID"] | []
) {
  return db.redis.exec([
    "XCLAIM",
    db.keys.channel(sub.channel),
    sub.group,
    consumer,
    String(minIdleMs),
    ...ids,
    "IDLE",
    leaseIdle(visibilityMs),
    ...justId,
  ]);
}
