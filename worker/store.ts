// The worker's Redis calls on a unit: the one place delivery touches a unit's stream and group.
// Keys come from shared/keys.ts, scripts from shared/lua. Each call, its cost, and what happens
// when its reply is lost (shared/redis.ts: `db.redis` repeats, `db.once` does not):
//
//   call               commands                                   reply lost
//   pendingSummary     XPENDING (summary)                         repeated: a read
//   pendingList        XPENDING - + 1000                          repeated: a read
//   read               [XACK, ZADD LT, XADD per request] +        once; the writes again (records
//                      XREADGROUP >                               by lua/record.ts: each once), then
//                                                                 lua/reread.ts from the cursor
//   claim              [writes] + XCLAIM min-idle RETRYCOUNT n    once; lua/record.ts, then XCLAIM
//                                                                 min-idle 0 with the same
//                                                                 RETRYCOUNT (sets, not adds)
//   settle             XACK, ZADD, ZREM (never records)           repeated: each ends the same
//   parkDeadLetters    lua/dead-letter.ts                         repeated: parks only the pending,
//                                                                 trims (and counts) nothing more
//   close              lua/close.ts (+ records and counters)      once; again with the cursor: the
//                                                                 records and counters only if the
//                                                                 first did not write them
//   finish             lua/finish.ts (+ records and counters)     repeated: see the script; the
//                                                                 records and counters once
//
// A read never loses entries to a lost reply: whatever it took is read again, or it never ran.
//
// The attempt log (shared/attempt-log.ts) gets one XADD per webhook request, in whichever of
// read, claim, close or finish comes next, and a record is neither lost nor logged twice when a
// reply is: a lost read's or claim's records go again through lua/record.ts, which appends only
// those the log does not hold yet; the close and finish scripts write theirs once per write id
// (lua/attempt-writes.ts). The delivery counters (shared/counters.ts) ride only with the close or
// finish (once per drain, HINCRBY of the counters that moved), under the same write id. One
// corner writes a drain's records and counts twice: its close or finish let the lease go, lost
// its reply, and another deliverer wrote enough before the repeat (see lua/attempt-writes.ts).
// What a Worker killed mid-visit had not written yet (its last requests' records and its drain's
// counts) is lost with it, as its acks are.

import { ATTEMPT_LOG_LENGTH, recordEntry, recordValues } from "../shared/attempt-log.ts";
import { parkPending, type DeadLetterBounds as SharedBounds } from "../shared/dead-letters.ts";
import {
  CONSUMER,
  metricsField,
  pausedField,
  retryMember,
  type StateFact,
  stateField,
  wakeMember,
  writeMarkField,
} from "../shared/keys.ts";
import { CLOSE_LUA } from "../shared/lua/close.ts";
import { FINISH_LUA } from "../shared/lua/finish.ts";
import { RECORD_LUA } from "../shared/lua/record.ts";
import { REREAD_LUA } from "../shared/lua/reread.ts";
import {
  asArray,
  asEntries,
  asNumber,
  asOptionalString,
  asStreams,
  asString,
  type Db,
  isOutcomeUnknown,
  runScript,
} from "../shared/redis.ts";
import { counterIncrements } from "./attempts.ts";
import { toUnitEntries, type UnitEntry, type WorkUnit } from "./entries.ts";
import {
  type DeadLetter,
  hasWrites,
  type StateChange,
  stateWrites,
  type Writes,
} from "./settle.ts";

type Pipeline = ReturnType<Db["redis"]["pipeline"]>;

/** Entries a read or claim returned, and the ids of pending entries deleted from the stream. */
export interface Taken {
  entries: UnitEntry[];
  deleted: string[];
}

/** How many entries the unit's consumer holds, and the highest id among them. */
export async function pendingSummary(db: Db, unit: WorkUnit) {
  // @upstash/redis only types the extended form; the summary form is one cheap reply.
  const reply = asArray(await db.redis.exec(["XPENDING", unit.stream, unit.group]));
  return { count: asNumber(reply[0] ?? 0), maxId: asOptionalString(reply[2]) };
}

export interface PendingEntry {
  entryId: string;
  idleMs: number;
  /** Attempts made so far. */
  deliveries: number;
}

/** The unit's pending entries, oldest first (at most 1,000: Upstash's per-consumer ceiling). */
export async function pendingList(db: Db, unit: WorkUnit): Promise<PendingEntry[]> {
  const reply = await db.redis.xpending(unit.stream, unit.group, "-", "+", 1000);
  return asArray(reply).map((raw) => {
    const [id, , idle, count] = asArray(raw);
    return { entryId: asString(id), idleMs: asNumber(idle), deliveries: asNumber(count) };
  });
}

// The writes that ride in front of the next read: all safe to repeat but the records (a repeat
// would log them twice: see the header).
function queueWrites(db: Db, pipeline: Pipeline, unit: WorkUnit, w: Writes): void {
  if (w.ack.length > 0) {
    pipeline.xack(unit.stream, unit.group, w.ack);
    if (unit.kind === "redrive") pipeline.xdel(unit.stream, w.ack);
  }
  if (w.retryAt !== null) {
    pipeline.zadd(db.keys.due(), { lt: true }, { score: w.retryAt, member: retryMember(unit) });
  }
  const log = db.keys.attempts(unit.channel, unit.subscription);
  for (const record of w.attempts) {
    // NOMKSTREAM: a subscription deleted meanwhile does not get its log back (subscribe makes it).
    const trim = { type: "MAXLEN", comparison: "~", threshold: ATTEMPT_LOG_LENGTH } as const;
    pipeline.xadd(log, "*", recordEntry(record), { nomkStream: true, trim });
  }
}

/**
 * Appends records a lost read or claim carried, unless the log has them already (lua/record.ts).
 * Safe to repeat.
 */
async function recordOnce(db: Db, unit: WorkUnit, w: Writes): Promise<void> {
  if (w.attempts.length === 0) return;
  const log = db.keys.attempts(unit.channel, unit.subscription);
  await runScript(db.redis, RECORD_LUA, [log], w.attempts.flatMap(recordValues));
}

/**
 * Writes `w` (without its state, which waits for the close or finish) and schedule changes on
 * their own, in one round trip.
 */
export async function settle(
  db: Db,
  unit: WorkUnit,
  w: Writes,
  schedule: ScheduleChange[] = [],
): Promise<void> {
  if (!hasWrites(w) && schedule.length === 0) return;
  // db.redis repeats a pipeline whose reply is lost: records would be logged twice.
  if (w.attempts.length > 0) throw new Error("settle: attempt records ride with a read or claim");
  const pipeline = db.redis.pipeline();
  queueWrites(db, pipeline, unit, w);
  const due = db.keys.due();
  for (const c of schedule) {
    if (c.how === "rem") pipeline.zrem(due, c.member);
    else if (c.how === "set") pipeline.zadd(due, { score: c.at, member: c.member });
    else if (c.how === "lt") pipeline.zadd(due, { lt: true }, { score: c.at, member: c.member });
    else pipeline.zadd(due, { xx: true }, { score: c.at, member: c.member });
  }
  await pipeline.exec();
}

function taken(unit: WorkUnit, reply: unknown): Taken {
  const { live, deleted } = toUnitEntries(unit, asStreams(reply).get(unit.stream) ?? [], 1);
  return { entries: live, deleted };
}

/**
 * Writes `w` and reads up to `count` new entries, in one round trip (XACK + XREADGROUP when all
 * went well). `cursor` is the highest id the consumer held before: if the reply is lost, what
 * the read took is read again from there (lua/reread.ts), or the read runs again if it took none.
 */
export async function read(
  db: Db,
  unit: WorkUnit,
  w: Writes,
  count: number,
  cursor: string,
): Promise<Taken> {
  const pipeline = db.once.pipeline();
  queueWrites(db, pipeline, unit, w);
  pipeline.xreadgroup(unit.group, CONSUMER, unit.stream, ">", { count });
  try {
    return taken(unit, (await pipeline.exec<unknown[]>()).at(-1));
  } catch (error) {
    if (!isOutcomeUnknown(error)) throw error;
  }
  await recordOnce(db, unit, w);
  await settle(db, unit, { ...w, attempts: [] });
  const again = await runScript(
    db.redis,
    REREAD_LUA,
    [unit.stream],
    [unit.group, CONSUMER, String(count), cursor],
  );
  if (again !== null) return taken(unit, again);
  // The lost read took nothing (or never ran): read once more, the writes already done.
  return read(db, unit, { ...w, ack: [], retryAt: null, attempts: [] }, count, cursor);
}

/** One XCLAIM: these pending ids, if idle that long, with their delivery count set to `count`. */
export interface Claim {
  ids: string[];
  minIdleMs: number;
  /** What their delivery count becomes: the attempts made, this one included. */
  count: number;
}

/**
 * Writes `w` and takes pending entries for another attempt (XCLAIM), in one round trip. Only
 * entries idle at least `minIdleMs` are taken, so a message another deliverer is sending right
 * now is left alone. If the reply is lost, the claim is made again with min-idle 0 (the first
 * one may have reset their idle time): its RETRYCOUNT sets the count, so no attempt is counted
 * twice. Entries deleted from the stream meanwhile come back in `deleted`.
 */
export async function claim(db: Db, unit: WorkUnit, w: Writes, claims: Claim[]): Promise<Taken> {
  const attempt = new Map(claims.flatMap((c) => c.ids.map((id) => [id, c.count] as const)));
  const send = async (client: Db["redis"], w2: Writes, minIdle: (c: Claim) => number) => {
    const pipeline = client.pipeline();
    queueWrites(db, pipeline, unit, w2);
    for (const c of claims) {
      pipeline.xclaim(unit.stream, unit.group, CONSUMER, minIdle(c), c.ids, {
        retryCount: c.count,
      });
    }
    const replies = await pipeline.exec<unknown[]>();
    return replies.slice(replies.length - claims.length);
  };
  let replies: unknown[];
  try {
    replies = await send(db.once, w, (c) => c.minIdleMs);
  } catch (error) {
    if (!isOutcomeUnknown(error)) throw error;
    await recordOnce(db, unit, w);
    replies = await send(db.redis, { ...w, attempts: [] }, () => 0);
  }
  const entries: UnitEntry[] = [];
  for (const reply of replies) {
    // Entries deleted from the stream meanwhile are not returned (Redis drops them from the
    // pending list as it claims), nor are those another deliverer touched since.
    for (const entry of toUnitEntries(unit, asEntries(reply), 1).live) {
      entries.push({ ...entry, attempt: attempt.get(entry.entryId) ?? 1 });
    }
  }
  entries.sort((a, b) => compareIds(a.entryId, b.entryId));
  return { entries, deleted: [] };
}

/** Stream ids in order ("<ms>-<seq>", both parts up to 2^64). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? (as < bs ? -1 : as > bs ? 1 : 0) : am < bm ? -1 : 1;
}

/** The bounds of a subscription's dead letters at one parking (config: DEAD_LETTER_MAX_*). */
export type DeadLetterBounds = SharedBounds & { now: number };

/**
 * Parks dead letters (lua/dead-letter.ts): each is acked once its copy is stored, and the dead
 * letters are trimmed to their bounds. Returns those Redis refused to store (they stay pending)
 * and why, and how many dead letters the bounds removed (counted in the subscription's state).
 */
export async function parkDeadLetters(
  db: Db,
  unit: WorkUnit,
  dead: DeadLetter[],
  bounds: DeadLetterBounds,
) {
  if (dead.length === 0) return { refused: [] as DeadLetter[], reason: "", expired: 0, dropped: 0 };
  const from = {
    channel: unit.channel,
    subscription: unit.subscription,
    stream: unit.stream,
    group: unit.group,
    consumer: CONSUMER,
    redrive: unit.kind === "redrive",
  };
  const letters = dead.map((d) => ({ id: d.entryId, attempts: d.attempts, error: d.error }));
  const { parked, refusal, expired, dropped } = await parkPending(db, from, letters, bounds);
  return { refused: refusal === "" ? [] : dead.slice(parked), reason: refusal, expired, dropped };
}

const stateField$ = (unit: WorkUnit) => (fact: StateFact) => stateField(unit.subscription, fact);

/**
 * A close's or finish's attempt writes (lua/attempt-writes.ts): their ARGV segment, and the state
 * field that marks them written (null when there is nothing to write). A fresh id per write.
 */
function attemptWrites(unit: WorkUnit, w: Writes, token: string) {
  const counts = counterIncrements(w.state.counts, (c) => metricsField(unit.subscription, c));
  const marker = writeMarkField(unit.subscription, token);
  const id = w.attempts.length > 0 || counts.length > 0 ? crypto.randomUUID() : "";
  const args = [
    id,
    marker,
    String(w.attempts.length),
    ...w.attempts.flatMap(recordValues),
    String(counts.length / 2),
    ...counts,
  ];
  return { args, mark: id === "" ? {} : { [marker]: id } };
}

/** The keys the attempt writes need, after a script's own. */
const attemptKeys = (db: Db, unit: WorkUnit) => [
  db.keys.metrics(unit.channel),
  db.keys.attempts(unit.channel, unit.subscription),
];

/** `recovered`: this close cleared the endpoint's failingSince (its first success since failing). */
export type Closed =
  | { kind: "fresh"; taken: Taken; recovered: boolean }
  | { kind: "closed"; recovered: boolean }
  | { kind: "lost" };

/** What a finish found of the endpoint's health (lua/finish.ts). */
export type Health = "failing" | "disabled" | "recovered" | null;

/**
 * The end of a drain (lua/close.ts): writes `w` with its state, then reads once more; entries
 * found are returned to deliver, none and the unit lets go (wake member removed, lease released
 * with `release`). "lost": the lease was not this deliverer's any more.
 */
export async function close(
  db: Db,
  unit: WorkUnit,
  c: {
    w: Writes;
    count: number;
    token: string;
    release: boolean;
    cursor: string;
    /** The unit was failing (it had a retry due): a success here clears failingSince. */
    wasFailing: boolean;
  },
): Promise<Closed> {
  const { set } = stateWrites(c.w.state, stateField$(unit));
  const writes = attemptWrites(unit, c.w, c.token);
  const keys = [
    unit.stream,
    db.keys.due(),
    db.keys.lease(unit.channel, unit.subscription),
    db.keys.state(unit.channel),
    ...attemptKeys(db, unit),
  ];
  const args = (cursor: string) => [
    unit.group,
    CONSUMER,
    String(c.count),
    wakeMember(unit),
    retryMember(unit),
    c.token,
    c.release ? "1" : "0",
    unit.kind === "redrive" ? "1" : "0",
    cursor,
    c.w.retryAt === null ? "" : String(c.w.retryAt),
    c.wasFailing && c.w.state.success ? stateField(unit.subscription, "failingSince") : "",
    String(c.w.ack.length),
    ...c.w.ack,
    ...writes.args,
    ...Object.entries({ ...set, ...writes.mark }).flat(),
  ];
  let reply: unknown;
  try {
    reply = await runScript(db.once, CLOSE_LUA, keys, args(""));
  } catch (error) {
    if (!isOutcomeUnknown(error)) throw error;
    reply = await runScript(db.redis, CLOSE_LUA, keys, args(c.cursor));
  }
  const [status, entries, recovered] = asArray(reply);
  switch (asNumber(status)) {
    case 0:
      return { kind: "lost" };
    case 2:
      return { kind: "closed", recovered: asNumber(entries ?? 0) === 1 };
    default:
      return {
        kind: "fresh",
        taken: taken(unit, entries),
        recovered: asNumber(recovered ?? 0) === 1,
      };
  }
}

/** A change to the schedule {p}:due, applied by finish. */
export type ScheduleChange =
  | { how: "set" | "lt" | "xx"; member: string; at: number }
  | { how: "rem"; member: string };

/**
 * The last write of a unit that stops without a close (lua/finish.ts). Returns false when the
 * lease was not this deliverer's any more (only the acks were written).
 */
export async function finish(
  db: Db,
  unit: WorkUnit,
  f: {
    w: Writes;
    token: string;
    release: boolean;
    /** Entries taken but not sent, with the delivery count each goes back to. */
    unsent: { entryId: string; count: number }[];
    schedule: ScheduleChange[];
    pause: boolean;
    /** The endpoint's health: now, when to disable, and whether the unit was failing. */
    health: { now: number; disableAfterMs: number; wasFailing: boolean };
  },
): Promise<{ ours: boolean; health: Health }> {
  const { set, increment } = stateWrites(f.w.state, stateField$(unit));
  // The script is safe to repeat only when it releases the lease: see its header.
  if (increment > 0 && !f.release) throw new Error("finish: a failure count needs the release");
  const writes = attemptWrites(unit, f.w, f.token);
  const keys = [
    unit.stream,
    db.keys.due(),
    db.keys.lease(unit.channel, unit.subscription),
    db.keys.state(unit.channel),
    db.keys.subscriptions(unit.channel),
    ...attemptKeys(db, unit),
  ];
  // Messages the endpoint rejected since the last write are due at w.retryAt (ZADD LT).
  const schedule: ScheduleChange[] =
    f.w.retryAt === null
      ? f.schedule
      : [{ how: "lt", member: retryMember(unit), at: f.w.retryAt }, ...f.schedule];
  const changes = schedule.flatMap((c) =>
    c.how === "rem" ? ["rem", c.member, "0"] : [c.how, c.member, String(c.at)],
  );
  const args = [
    unit.group,
    CONSUMER,
    f.token,
    f.release ? "1" : "0",
    unit.kind === "redrive" ? "1" : "0",
    f.pause ? pausedField(unit.subscription) : "",
    stateField(unit.subscription, "failures"),
    String(increment),
    stateField(unit.subscription, "failingSince"),
    stateField(unit.subscription, "disabledAt"),
    String(f.health.now),
    String(f.health.disableAfterMs),
    pausedField(unit.subscription),
    f.health.wasFailing && f.w.state.success ? "1" : "0",
    String(f.w.ack.length),
    ...f.w.ack,
    String(f.unsent.length),
    ...f.unsent.flatMap((u) => [u.entryId, String(u.count)]),
    ...writes.args,
    String(schedule.length),
    ...changes,
    ...Object.entries({ ...set, ...writes.mark }).flat(),
  ];
  const reply = asNumber(await runScript(db.redis, FINISH_LUA, keys, args));
  const health: Health[] = [null, null, "failing", "disabled", "recovered"];
  // Negative: a repeat that found the lease gone, and the health its first run recorded.
  return { ours: reply > 0, health: health[Math.abs(reply)] ?? null };
}

/** For tests of the fold: the state hash fields a change writes. */
export const stateFieldsOf = (unit: WorkUnit, change: StateChange) =>
  stateWrites(change, stateField$(unit));
