// The delivery schedule ({p}:due) and the per-subscription lease, as the worker uses them.
//
// An idle pass is one ZRANGE over {p}:due: members exist only for units with something to do (a
// wake after a publish, a retry that comes due), so a pass costs nothing per quiet subscription.

import {
  parseDueMember,
  pausedField,
  retryMember,
  stateField,
  type Unit,
  unitName,
  wakeMember,
} from "./keys.ts";
import { asArray, asNumber, asOptionalString, asString, type Db, isReplyError } from "./redis.ts";
import { dueMembersOf, unitsOf } from "./subscriptions.ts";

export interface DueUnit {
  kind: "wake" | "retry";
  unit: Unit;
  at: number;
}

/** Members due by `now`, earliest first, at most `limit`. 1 command. */
export async function dueUnits(db: Db, now: number, limit: number): Promise<DueUnit[]> {
  const flat = asArray(
    await db.redis.zrange(db.keys.due(), "-inf", now, {
      byScore: true,
      withScores: true,
      offset: 0,
      count: limit,
    }),
  );
  const out: DueUnit[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const parsed = parseDueMember(asString(flat[i]));
    if (parsed) out.push({ ...parsed, at: asNumber(flat[i + 1]) });
  }
  return out;
}

export interface UnitSchedule {
  wake: number | null;
  retry: number | null;
}

/** The schedule of every unit of these subscriptions, keyed by unit name. 1 ZMSCORE. */
export async function schedulesOf(
  db: Db,
  subs: { channel: string; name: string }[],
): Promise<Map<string, UnitSchedule>> {
  const units = subs.flatMap((s) => unitsOf(s.channel, s.name));
  const out = new Map<string, UnitSchedule>();
  if (units.length === 0) return out;
  const members = units.flatMap((u) => [wakeMember(u), retryMember(u)]);
  const scores = asArray(await db.redis.zmscore(db.keys.due(), members));
  const score = (v: unknown) => (v === null || v === undefined ? null : asNumber(v));
  units.forEach((unit, i) => {
    out.set(unitName(unit), { wake: score(scores[2 * i]), retry: score(scores[2 * i + 1]) });
  });
  return out;
}

/** Takes each subscription's lease if free (SET NX PX): one pipeline, one command each. */
export async function acquireLeases(
  db: Db,
  subs: { channel: string; name: string; ttlMs: number }[],
  token: string,
): Promise<boolean[]> {
  if (subs.length === 0) return [];
  const pipeline = db.redis.pipeline();
  for (const s of subs) {
    pipeline.set(db.keys.lease(s.channel, s.name), token, { nx: true, px: s.ttlMs });
  }
  const replies = await pipeline.exec<unknown[]>();
  return replies.map((reply) => reply === "OK");
}

export async function releaseLease(db: Db, channel: string, name: string): Promise<void> {
  await db.redis.del(db.keys.lease(channel, name));
}

/**
 * After a failed request: nothing new is read from the unit, and its pending messages are not
 * retried, before `at` (both members move there; a publish meanwhile finds the wake member and
 * leaves it be).
 */
export async function backOff(db: Db, unit: Unit, at: number): Promise<void> {
  await db.redis.zadd(
    db.keys.due(),
    { score: at, member: wakeMember(unit) },
    { score: at, member: retryMember(unit) },
  );
}

/** Sets the unit's retry member to `at` exactly, or removes it when nothing is pending. */
export async function setRetry(db: Db, unit: Unit, at: number | null): Promise<void> {
  if (at === null) await db.redis.zrem(db.keys.due(), retryMember(unit));
  else await db.redis.zadd(db.keys.due(), { score: at, member: retryMember(unit) });
}

/** Moves the unit's wake member (e.g. to when retries may free room for new reads). */
export async function setWake(db: Db, unit: Unit, at: number): Promise<void> {
  await db.redis.zadd(db.keys.due(), { score: at, member: wakeMember(unit) });
}

/** Drops every schedule member of these subscriptions (paused, deleted, gone): 1 ZREM. */
export async function unschedule(db: Db, subs: { channel: string; name: string }[]) {
  if (subs.length === 0) return;
  await db.redis.zrem(db.keys.due(), ...subs.flatMap((s) => dueMembersOf(s.channel, s.name)));
}

/**
 * 410 Gone: pause the subscription (the API's resume undoes it) and stop scheduling it. The
 * failure itself is in the caller's settlement, written before this.
 */
export async function pauseGone(db: Db, channel: string, name: string): Promise<void> {
  await db.redis
    .pipeline()
    .hset(db.keys.subscriptions(channel), { [pausedField(name)]: "1" })
    .zrem(db.keys.due(), ...dueMembersOf(channel, name))
    .exec();
}

/**
 * A group that vanished (NOGROUP: data loss, or a deleted subscription's pass still running):
 * recreates the main group where the subscriber last acknowledged (at-least-once: nothing after
 * it is skipped), or from the start if that is unknown. Returns false when the subscription no
 * longer exists (its work is dropped) or the unit is a redrive stream that is gone.
 */
export async function recoverGroup(db: Db, unit: Unit): Promise<boolean> {
  const { keys } = db;
  const [exists, acked] = await db.redis
    .pipeline()
    .hexists(keys.subscriptions(unit.channel), unit.subscription)
    .hget(keys.state(unit.channel), stateField(unit.subscription, "lastAckedId"))
    .exec<[unknown, unknown]>();
  if (asNumber(exists) === 0 || unit.kind === "redrive") {
    await db.redis.zrem(keys.due(), wakeMember(unit), retryMember(unit));
    return false;
  }
  const start = asOptionalString(acked) ?? "0";
  try {
    await db.redis.xgroup(keys.channel(unit.channel), {
      type: "CREATE",
      group: unit.subscription,
      id: start,
      options: { MKSTREAM: true },
    });
  } catch (error) {
    if (!isReplyError(error, "BUSYGROUP")) throw error;
  }
  return true;
}
