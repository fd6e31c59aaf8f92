// Subscriptions in Redis: create, read, update, delete, replay. One consumer group per
// subscription on the channel's stream (group name = subscription name); its settings in
// {p}:subs:<ch>; its delivery state in {p}:state:<ch>; its schedule in {p}:due (see keys.ts).

import {
  PAUSED_SUFFIX,
  pausedField,
  retryMember,
  type StateFact,
  stateField,
  type Unit,
  type UnitKind,
  wakeMember,
} from "./keys.ts";
import { SUBSCRIBE_LUA } from "./lua/subscribe.ts";
import { UNSUBSCRIBE_LUA } from "./lua/unsubscribe.ts";
import { UPDATE_LUA } from "./lua/update.ts";
import { asArray, asFields, asNumber, asOptionalString, type Db, runScript } from "./redis.ts";
import { parseSubscription, type Subscription, serializeSubscription } from "./subscription.ts";

const STATE_FACTS: StateFact[] = [
  "failures",
  "lastError",
  "lastErrorAt",
  "lastSuccessAt",
  "lastAckedId",
];
const UNIT_KINDS: UnitKind[] = ["main", "redrive"];

export const unitsOf = (channel: string, subscription: string): Unit[] =>
  UNIT_KINDS.map((kind) => ({ channel, subscription, kind }));

/** Every {p}:due member a subscription can have. */
export const dueMembersOf = (channel: string, subscription: string): string[] =>
  unitsOf(channel, subscription).flatMap((unit) => [wakeMember(unit), retryMember(unit)]);

/**
 * Creates the subscription and its group, delivering what comes after `startId` ("$": only new
 * messages; anything else makes it due now). False when the name is taken.
 */
export async function createSubscription(db: Db, sub: Subscription, startId: string) {
  const { keys } = db;
  const main: Unit = { channel: sub.channel, subscription: sub.name, kind: "main" };
  const created = await runScript(
    db,
    SUBSCRIBE_LUA,
    [keys.subscriptions(sub.channel), keys.channel(sub.channel), keys.channels(), keys.due()],
    [
      sub.name,
      serializeSubscription(sub),
      startId,
      sub.channel,
      String(Date.now()),
      startId === "$" ? "" : wakeMember(main),
    ],
  );
  return asNumber(created) === 1;
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

/** All of a channel's subscriptions, sorted by name. */
export async function loadChannelSubscriptions(db: Db, channel: string): Promise<Subscription[]> {
  const flat = asFields(await db.redis.hgetall(db.keys.subscriptions(channel)));
  return Object.keys(flat)
    .filter((field) => !field.endsWith(PAUSED_SUFFIX))
    .sort()
    .map((name) => parseSubscription(channel, name, flat[name]!, pausedField(name) in flat));
}

/**
 * Writes new settings (and the paused flag) if the subscription still exists. `wake` makes its
 * units due now: on resume, and when the URL changes (a new endpoint deserves a try now).
 */
export async function saveSubscription(
  db: Db,
  sub: Subscription,
  change: { paused?: boolean; wake?: boolean },
): Promise<boolean> {
  const paused = change.paused === undefined ? "" : change.paused ? "1" : "0";
  const members = change.wake ? dueMembersOf(sub.channel, sub.name) : [];
  const updated = await runScript(
    db,
    UPDATE_LUA,
    [db.keys.subscriptions(sub.channel), db.keys.due()],
    [
      sub.name,
      serializeSubscription(sub),
      pausedField(sub.name),
      paused,
      String(Date.now()),
      ...members,
    ],
  );
  return asNumber(updated) === 1;
}

/** Removes the subscription, its group, dead letters, redrive stream, state and schedule. */
export async function deleteSubscription(db: Db, channel: string, name: string) {
  const { keys } = db;
  const stateFields = STATE_FACTS.map((fact) => stateField(name, fact));
  const deleted = await runScript(
    db,
    UNSUBSCRIBE_LUA,
    [
      keys.subscriptions(channel),
      keys.channel(channel),
      keys.deadLetters(channel, name),
      keys.redrive(channel, name),
      keys.lease(channel, name),
      keys.state(channel),
      keys.due(),
    ],
    [
      name,
      pausedField(name),
      String(stateFields.length),
      ...stateFields,
      ...dueMembersOf(channel, name),
    ],
  );
  return asNumber(deleted) === 1;
}

/** Moves the group's cursor to just before `startId`'s successor and makes the unit due now. */
export async function replay(db: Db, channel: string, name: string, startId: string) {
  const main: Unit = { channel, subscription: name, kind: "main" };
  await db.redis
    .pipeline()
    .xgroup(db.keys.channel(channel), { type: "SETID", group: name, id: startId })
    .zadd(db.keys.due(), { lt: true }, { score: Date.now(), member: wakeMember(main) })
    .exec();
}
