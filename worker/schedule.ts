// The delivery schedule ({p}:due), and loading what a pass delivers to.
//
// An idle pass is one ZRANGE over {p}:due: members exist only for units with something to do (a
// wake after a publish, a retry that comes due), so a pass costs nothing per quiet subscription.
// Every call here is safe to repeat after a lost reply (shared/redis.ts): reads, ZADDs and the
// conditional scripts.

import {
  parseDueMember,
  pausedField,
  pullField,
  retryMember,
  stateField,
  type Unit,
  unitName,
  wakeMember,
} from "../shared/keys.ts";
import { UNSCHEDULE_LUA } from "../shared/lua/unschedule.ts";
import {
  asArray,
  asNumber,
  asOptionalString,
  asString,
  type Db,
  isReplyError,
  runScript,
} from "../shared/redis.ts";
import { parseSubscription, type Subscription } from "../shared/subscription.ts";
import { dueMembersOf, loadSubscriptions, unitsOf } from "../shared/subscriptions.ts";
import { type DueTimer, timerOf } from "./timers.ts";

export interface DueUnit {
  kind: "wake" | "retry";
  unit: Unit;
  at: number;
}

/** Delivery members due by `now`, earliest first, at most `limit`. 1 command. */
export async function dueUnits(db: Db, now: number, limit: number): Promise<DueUnit[]> {
  return (await dueWork(db, now, limit)).units;
}

/**
 * Everything in {p}:due by `now`, earliest first, at most `limit` members: the delivery units and
 * the timers (timers.ts). 1 ZRANGE.
 */
export async function dueWork(
  db: Db,
  now: number,
  limit: number,
): Promise<{ units: DueUnit[]; timers: DueTimer[] }> {
  const flat = asArray(
    await db.redis.zrange(db.keys.due(), "-inf", now, {
      byScore: true,
      withScores: true,
      offset: 0,
      count: limit,
    }),
  );
  const units: DueUnit[] = [];
  const timers: DueTimer[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const member = asString(flat[i]);
    const at = asNumber(flat[i + 1]);
    const parsed = parseDueMember(member);
    if (parsed) units.push({ ...parsed, at });
    else {
      const timer = timerOf(member, at);
      if (timer) timers.push(timer);
    }
  }
  return { units, timers };
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

export interface Loaded {
  sub: Subscription;
  schedules: Map<string, UnitSchedule>;
}

/**
 * Settings and schedules in one round trip (auto-pipelined: one HMGET per channel and one
 * ZMSCORE). Subscriptions that are gone or paused have their schedule dropped (resume and create
 * put it back), unless they were resumed since: lua/unschedule.ts looks again in the same step.
 */
export async function load(db: Db, wanted: { channel: string; name: string }[]): Promise<Loaded[]> {
  const byChannel = new Map<string, string[]>();
  for (const w of wanted) byChannel.set(w.channel, [...(byChannel.get(w.channel) ?? []), w.name]);
  const [schedules, ...perChannel] = await Promise.all([
    schedulesOf(db, wanted),
    ...[...byChannel].map(([channel, names]) => loadSubscriptions(db, channel, names)),
  ]);
  const loaded: Loaded[] = [];
  const stale: { channel: string; name: string; marker: string }[] = [];
  [...byChannel].forEach(([channel, names], c) => {
    names.forEach((name, i) => {
      const sub = perChannel[c]?.[i];
      if (sub && !sub.paused && sub.mode === "push") loaded.push({ sub, schedules });
      // A pull subscription is never visited (nothing schedules it; this drops a stray member).
      else if (sub?.mode === "pull") stale.push({ channel, name, marker: pullField(name) });
      else stale.push({ channel, name, marker: pausedField(name) });
    });
  });
  await unschedule(db, stale);
  return loaded;
}

/** Drops the schedule of subscriptions still paused (or pull) or gone (lua/unschedule.ts). */
async function unschedule(
  db: Db,
  subs: { channel: string; name: string; marker: string }[],
): Promise<void> {
  if (subs.length === 0) return;
  const channels = [...new Set(subs.map((s) => s.channel))];
  const keys = [db.keys.due(), ...channels.map((c) => db.keys.subscriptions(c))];
  const args = subs.flatMap(({ channel, name, marker }) => {
    const members = dueMembersOf(channel, name);
    const index = channels.indexOf(channel) + 2; // KEYS is 1-based, KEYS[1] is {p}:due
    return [String(index), name, marker, String(members.length), ...members];
  });
  await runScript(db.redis, UNSCHEDULE_LUA, keys, args);
}

/**
 * A group that vanished (NOGROUP). Three cases, told apart by the subscription stored now:
 *   "gone"       it was deleted: its work is dropped (and its schedule, which is its own)
 *   "replaced"   the name belongs to a newer subscription: this visit is stale, it stops and
 *                touches nothing (the schedule is the new subscription's)
 *   "recreated"  Redis lost the group of a subscription that still exists: it is recreated on
 *                the channel where the subscriber last acknowledged (at-least-once: nothing after
 *                it is skipped; from the start if that is unknown). A redrive stream that is gone
 *                had nothing left to deliver: "gone".
 */
export async function recoverGroup(
  db: Db,
  unit: Unit,
  id: string,
  now: number,
): Promise<"gone" | "replaced" | "recreated"> {
  const { keys } = db;
  const [json, acked] = await db.redis
    .pipeline()
    .hget(keys.subscriptions(unit.channel), unit.subscription)
    .hget(keys.state(unit.channel), stateField(unit.subscription, "lastAckedId"))
    .exec<[unknown, unknown]>();
  const stored = asOptionalString(json);
  if (stored === null) {
    await db.redis.zrem(keys.due(), ...dueMembersOf(unit.channel, unit.subscription));
    return "gone";
  }
  const current = parseSubscription(unit.channel, unit.subscription, stored, false);
  if (current.id !== id) return "replaced";
  if (unit.kind === "redrive") {
    await db.redis.zrem(keys.due(), wakeMember(unit), retryMember(unit));
    return "gone";
  }
  try {
    await db.redis.xgroup(keys.channel(unit.channel), {
      type: "CREATE",
      group: current.group,
      id: asOptionalString(acked) ?? "0",
      options: { MKSTREAM: true },
    });
  } catch (error) {
    if (!isReplyError(error, "BUSYGROUP")) throw error;
  }
  await db.redis.zadd(keys.due(), { score: now, member: wakeMember(unit) });
  return "recreated";
}
