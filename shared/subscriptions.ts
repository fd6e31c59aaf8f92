// Subscriptions in Redis: create, read, update, delete, replay. One consumer group per
// subscription on the channel's stream (named after its identity, see subscription.ts); its
// settings in {p}:subs:<ch>; its delivery state in {p}:state:<ch>; its schedule in {p}:due (see
// keys.ts).

import type { RetentionConfig } from "./config.ts";
import { counterFields } from "./counters.ts";
import { subscriptionNotFound } from "./errors.ts";
import {
  isSubscriptionField,
  pausedField,
  pullField,
  redriveField,
  retryMember,
  rosterMember,
  type StateFact,
  stateField,
  sweepMember,
  trimField,
  type Unit,
  type UnitKind,
  wakeMember,
} from "./keys.ts";
import { SUBSCRIBE_LUA } from "./lua/subscribe.ts";
import { UNSUBSCRIBE_LUA } from "./lua/unsubscribe.ts";
import { UPDATE_LUA } from "./lua/update.ts";
import {
  asArray,
  asEntries,
  asFields,
  asNumber,
  asOptionalString,
  type Db,
  runScript,
} from "./redis.ts";
import { ROSTER_TTL_MS, rosters } from "./roster.ts";
import { sweepGapMs } from "./streams.ts";
import { parseSubscription, type Subscription, serializeSubscription } from "./subscription.ts";

const STATE_FACTS: StateFact[] = [
  "failures",
  "lastError",
  "lastErrorAt",
  "lastSuccessAt",
  "lastAckedId",
  "expired",
  "lastExpiredAt",
  "failingSince",
  "disabledAt",
  "deadLettersExpired",
  "deadLettersDropped",
  "concurrency",
  "concurrencyCutAt",
];
const UNIT_KINDS: UnitKind[] = ["main", "redrive"];

export const unitsOf = (channel: string, subscription: string): Unit[] =>
  UNIT_KINDS.map((kind) => ({ channel, subscription, kind }));

/** Every {p}:due member a subscription can have. */
export const dueMembersOf = (channel: string, subscription: string): string[] =>
  unitsOf(channel, subscription).flatMap((unit) => [wakeMember(unit), retryMember(unit)]);

/**
 * The earliest a roster copy still in use can have been read, for a change at `now`: a copy
 * lives ROSTER_TTL_MS by the Worker's clock, and stream ids carry Redis' (CLOCK_MARGIN_MS apart
 * at most, as the attempt log also assumes).
 */
const rosterSince = (now: number) => String(now - ROSTER_TTL_MS - ROSTER_CLOCK_MARGIN_MS);
const ROSTER_CLOCK_MARGIN_MS = 2000;

/**
 * Creates the subscription and its group, delivering what comes after `startId` ("$": only new
 * messages; anything else makes it due now). False when the name is taken; else when its
 * channel's roster timer runs (shared/roster.ts), or null when none was needed.
 */
export async function createSubscription(
  db: Db,
  sub: Subscription,
  startId: string,
  now: number,
  retention: RetentionConfig,
) {
  const { keys } = db;
  const main: Unit = { channel: sub.channel, subscription: sub.name, kind: "main" };
  // Safe to repeat: a repeat finds the name taken (0) and the route answers 409, as it would to
  // a client's own retry. The group it made is the subscription's, so nothing is left over.
  const created = await runScript(
    db.redis,
    SUBSCRIBE_LUA,
    [
      keys.subscriptions(sub.channel),
      keys.channel(sub.channel),
      keys.channels(),
      keys.due(),
      keys.attempts(sub.channel, sub.name),
    ],
    [
      sub.name,
      serializeSubscription(sub),
      startId,
      sub.channel,
      String(now),
      startId === "$" || sub.mode === "pull" ? "" : wakeMember(main),
      sub.group,
      trimField,
      // The channel's trim clock starts now, if it has none (lua/trim.ts), and its sweep is due
      // a gap from now at the latest (lua/sweep.ts).
      `${now + retention.trimMinIntervalMs}:0:${now}`,
      sub.mode === "pull" ? pullField(sub.name) : "",
      sweepMember(sub.channel),
      String(now + sweepGapMs(retention)),
      sub.mode === "pull" ? "" : rosterMember(sub.channel),
      String(now + ROSTER_TTL_MS),
      rosterSince(now),
    ],
  );
  // This isolate's publishes see it at once; the others' by the roster timer (shared/roster.ts).
  rosters.forget(db, sub.channel);
  return rosterOutcome(asNumber(created), now);
}

/** The group id to start after so that delivery begins at `from` (inclusive). */
export function startIdFor(from: "latest" | "earliest" | { id: string } | { time: number }) {
  if (from === "latest") return "$";
  if (from === "earliest") return "0";
  if ("time" in from) return from.time <= 0 ? "0" : `${from.time - 1}-18446744073709551615`;
  const [ms, seq] = from.id.split("-").map(BigInt) as [bigint, bigint];
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0n ? `${ms - 1n}-18446744073709551615` : "0";
}

/** The subscriptions of a channel by name (null where there is none), in one command. */
export async function loadSubscriptions(
  db: Db,
  channel: string,
  names: string[],
): Promise<(Subscription | null)[]> {
  if (names.length === 0) return [];
  const fields = names.flatMap((name) => [name, pausedField(name)]);
  const values = asArray(await db.redis.hmget(db.keys.subscriptions(channel), ...fields));
  return names.map((name, i) => {
    const json = asOptionalString(values[2 * i]);
    return json === null ? null : parseSubscription(channel, name, json, values[2 * i + 1] != null);
  });
}

export async function loadSubscription(db: Db, channel: string, name: string) {
  return (await loadSubscriptions(db, channel, [name]))[0] ?? null;
}

/** The subscription, or the 404 `subscription_not_found` every route under it answers. */
export async function mustLoadSubscription(db: Db, channel: string, name: string) {
  const sub = await loadSubscription(db, channel, name);
  if (!sub) throw subscriptionNotFound(channel, name);
  return sub;
}

/** All of a channel's subscriptions, sorted by name. */
export async function loadChannelSubscriptions(db: Db, channel: string): Promise<Subscription[]> {
  const flat = asFields(await db.redis.hgetall(db.keys.subscriptions(channel)));
  return Object.keys(flat)
    .filter(isSubscriptionField)
    .sort()
    .map((name) => parseSubscription(channel, name, flat[name]!, pausedField(name) in flat));
}

/** A subscribe's or update's answer: 0 not done, 1 done, 2 done with the roster timer set. */
const rosterOutcome = (reply: number, now: number) =>
  reply === 0 ? false : { rosterAt: reply === 2 ? now + ROSTER_TTL_MS : null };

/**
 * Writes new settings (and the paused flag) if the subscription still exists (false when not;
 * else when the channel's roster timer runs, or null). `wake` makes its units due now: on
 * resume, and when the URL changes (a new endpoint deserves a try now). `reorder` (`ordered`
 * changed) deletes its lanes (lua/update.ts).
 */
export async function saveSubscription(
  db: Db,
  sub: Subscription,
  change: { paused?: boolean; wake?: boolean; reorder?: boolean },
  now: number,
) {
  const paused = change.paused === undefined ? "" : change.paused ? "1" : "0";
  const members = change.wake ? dueMembersOf(sub.channel, sub.name) : [];
  const keys = [
    db.keys.subscriptions(sub.channel),
    db.keys.due(),
    db.keys.state(sub.channel),
    db.keys.channel(sub.channel),
  ];
  if (change.reorder) keys.push(db.keys.lanes(sub.channel, sub.name));
  // Safe to repeat: it writes the same settings and wakes the same members again.
  const updated = await runScript(db.redis, UPDATE_LUA, keys, [
    sub.name,
    serializeSubscription(sub),
    pausedField(sub.name),
    paused,
    String(now),
    stateField(sub.name, "failingSince"),
    stateField(sub.name, "disabledAt"),
    sub.mode === "pull" ? "" : rosterMember(sub.channel),
    String(now + ROSTER_TTL_MS),
    rosterSince(now),
    ...members,
  ]);
  rosters.forget(db, sub.channel);
  return rosterOutcome(asNumber(updated), now);
}

/**
 * Removes the subscription, its group, dead letters, redrive stream, state and schedule. Returns
 * "deleted", "missing", or "changed" when the name now belongs to another subscription than the
 * one given (deleted and created again since it was loaded: nothing was removed).
 */
export async function deleteSubscription(db: Db, sub: Subscription) {
  const { keys } = db;
  const { channel, name } = sub;
  const stateFields = STATE_FACTS.map((fact) => stateField(name, fact));
  const metricsFields = counterFields(name);
  // Safe to repeat: a repeat finds nothing (0), which the route answers like a delete, 204.
  const deleted = await runScript(
    db.redis,
    UNSUBSCRIBE_LUA,
    [
      keys.subscriptions(channel),
      keys.channel(channel),
      keys.deadLetters(channel, name),
      keys.redrive(channel, name),
      keys.pace(channel, name),
      keys.state(channel),
      keys.due(),
      keys.metrics(channel),
      keys.attempts(channel, name),
      keys.lanes(channel, name),
    ],
    [
      name,
      pausedField(name),
      sub.id,
      sub.group,
      String(stateFields.length),
      ...stateFields,
      String(metricsFields.length),
      ...metricsFields,
      pullField(name),
      redriveField(name),
      ...dueMembersOf(channel, name),
    ],
  );
  rosters.forget(db, channel);
  const result = asNumber(deleted);
  return result === 1 ? "deleted" : result === 0 ? "missing" : "changed";
}

/**
 * Moves the group's cursor to just before `startId`'s successor and makes the unit due now.
 * Null when the subscription's group is gone (it was deleted meanwhile); otherwise the id of the
 * first message it will deliver, which is the oldest the channel keeps when `startId` lies
 * before it (retention trimmed the rest), or null when there is none yet.
 */
export async function replay(
  db: Db,
  sub: Subscription,
  startId: string,
  now: number,
): Promise<{ firstId: string | null } | null> {
  const main: Unit = { channel: sub.channel, subscription: sub.name, kind: "main" };
  // One round trip; the ZADD runs even when SETID fails (pipelines do not stop), which at worst
  // wakes a unit whose next pass finds nothing to do.
  const stream = db.keys.channel(sub.channel);
  const after = startId === "$" ? "+" : startId === "0" ? "-" : `(${startId}`;
  const pipeline = db.redis
    .pipeline()
    .xgroup(stream, { type: "SETID", group: sub.group, id: startId })
    // The first entry it will read: no data travels but one entry's.
    .xrange(stream, after, "+", 1);
  // A pull subscription is never woken: its consumers pull.
  if (sub.mode === "push") {
    pipeline.zadd(db.keys.due(), { lt: true }, { score: now, member: wakeMember(main) });
  }
  const [moved, first] = await pipeline.exec({ keepErrors: true });
  if (moved?.error) {
    if (moved.error.includes("NOGROUP")) return null;
    throw new Error(moved.error);
  }
  if (startId === "$" || first?.error) return { firstId: null };
  return { firstId: asEntries(first?.result)[0]?.id ?? null };
}
