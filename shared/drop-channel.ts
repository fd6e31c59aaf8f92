// Deleting a channel: every key of it, its subscriptions with it only when asked.
//
// The steps:
//   look     1 round trip: does the channel exist, what subscriptions does it have, how many
//            delayed messages (the 409 and 404 cost nothing more)
//   find     its idempotency keys, with SCAN MATCH {p}:idem:<ch>:* (keys.ts): they are not indexed
//            per channel, so this is the one step whose cost grows with the whole database: one
//            SCAN per 1,000 keys in it
//   drop     lua/drop-channel.ts: the channel and its subscriptions at once, or nothing
//   then     DEL the idempotency keys found
//
// Why the idempotency keys are found before the drop and deleted after it: a publish may create the
// channel again right after the drop (lua/drop-channel.ts), and its idempotency key must survive,
// or a retry of that publish would store it twice. A key found before the drop belongs to a
// publish the drop deleted. One written between the SCAN and the drop is left to expire (24 h): it
// belongs to a publish that landed before the delete and was deleted with the channel, so a
// retry of it answering "already published" is right. If the request dies after the drop, the
// keys not yet deleted expire the same way; nothing else is ever left half-deleted.

import { isSubscriptionField, rosterMember, sweepMember, timerMember } from "./keys.ts";
import { DROP_CHANNEL_LUA } from "./lua/drop-channel.ts";
import { asArray, asNumber, asString, type Db, runScript } from "./redis.ts";
import { rosters } from "./roster.ts";
import { dueMembersOf } from "./subscriptions.ts";

export interface DroppedChannel {
  name: string;
  /** Messages the stream held. */
  messages: number;
  /** Delayed messages that had not entered it yet (shared/delayed.ts). */
  delayed: number;
  /** The subscriptions deleted with it (force), by name. */
  subscriptions: string[];
  /** Idempotency keys deleted (publishes of the last 24 h that carried one). */
  idempotencyKeys: number;
}

export type DropResult =
  | { kind: "dropped"; dropped: DroppedChannel }
  | { kind: "missing" }
  /** It has subscriptions, and `force` was not given: nothing was deleted. */
  | { kind: "subscribed"; subscriptions: string[] }
  /** Its subscriptions kept changing under a forced delete: nothing was deleted. */
  | { kind: "changed" };

const ATTEMPTS = 3;
const SCAN_COUNT = 1000;
const DEL_CHUNK = 1000;

/** Deletes the channel (see the header); with `force`, its subscriptions too. */
export async function dropChannel(
  db: Db,
  channel: string,
  options: { force: boolean },
): Promise<DropResult> {
  let seen = await look(db, channel);
  if (!seen) return { kind: "missing" };
  if (seen.subscriptions.length > 0 && !options.force)
    return { kind: "subscribed", subscriptions: seen.subscriptions };
  const idempotencyKeys = await scanKeys(db, db.keys.idempotencyPattern(channel));
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const [status, detail, delayed] = asArray(
      await drop(db, channel, seen.subscriptions, options.force),
    );
    switch (asNumber(status)) {
      case -2:
        return { kind: "subscribed", subscriptions: asArray(detail).map(asString).sort() };
      case -1:
        seen = await look(db, channel);
        if (!seen) return { kind: "missing" };
        continue;
      default: {
        // 0: gone already, by this request's own drop whose reply was lost (db.redis sent it
        // again), or by another delete: either way it is deleted, as the client asked.
        const messages = asNumber(status) === 1 ? asNumber(detail) : seen.length;
        await deleteKeys(db, idempotencyKeys);
        rosters.forget(db, channel);
        const dropped = {
          name: channel,
          messages,
          delayed: asNumber(status) === 1 ? asNumber(delayed) : seen.delayed,
          subscriptions: seen.subscriptions,
          idempotencyKeys: idempotencyKeys.length,
        };
        return { kind: "dropped", dropped };
      }
    }
  }
  return { kind: "changed" };
}

/** The channel's subscriptions and length, or null when nothing of it exists. */
async function look(db: Db, channel: string) {
  const { keys } = db;
  const [streams, registered, fields, length, delayed] = await db.redis
    .pipeline()
    .exists(keys.channel(channel))
    .sismember(keys.channels(), channel)
    .hkeys(keys.subscriptions(channel))
    .xlen(keys.channel(channel))
    .zcard(keys.delayed(channel))
    .exec<[unknown, unknown, unknown, unknown, unknown]>();
  const names = asArray(fields).map(asString);
  if (asNumber(streams) === 0 && asNumber(registered) === 0 && names.length === 0) return null;
  return {
    subscriptions: names.filter(isSubscriptionField).sort(),
    length: asNumber(length),
    delayed: asNumber(delayed),
  };
}

// Safe to repeat (db.redis): a repeat finds nothing (0), which dropChannel reads as deleted. A
// publish landing between the two runs would be deleted by the second: like a publish landing
// just before the delete, which is one of the two outcomes a racing publish can have anyway.
function drop(db: Db, channel: string, subscriptions: string[], force: boolean) {
  const { keys } = db;
  const subscriptionKeys = subscriptions.flatMap((name) => [
    keys.deadLetters(channel, name),
    keys.redrive(channel, name),
    keys.pace(channel, name),
    keys.attempts(channel, name),
    keys.lanes(channel, name),
  ]);
  return runScript(
    db.redis,
    DROP_CHANNEL_LUA,
    [
      keys.channel(channel),
      keys.subscriptions(channel),
      keys.state(channel),
      keys.channels(),
      keys.due(),
      keys.metrics(channel),
      keys.delayed(channel),
      keys.delayedMessages(channel),
      ...subscriptionKeys,
    ],
    [
      channel,
      force ? "force" : "",
      String(subscriptions.length),
      ...subscriptions,
      ...subscriptions.flatMap((name) => dueMembersOf(channel, name)),
      timerMember("delay", channel),
      sweepMember(channel),
      rosterMember(channel),
    ],
  );
}

/** Every key matching `pattern`: one SCAN per SCAN_COUNT keys of the database. */
async function scanKeys(db: Db, pattern: string): Promise<string[]> {
  const found = new Set<string>(); // SCAN may return a key twice
  let cursor = "0";
  do {
    const [next, batch] = asArray(
      await db.redis.scan(cursor, { match: pattern, count: SCAN_COUNT }),
    );
    cursor = asString(next);
    for (const key of asArray(batch)) found.add(asString(key));
  } while (cursor !== "0");
  return [...found];
}

/** DEL in chunks; safe to repeat (db.redis). */
async function deleteKeys(db: Db, keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += DEL_CHUNK) {
    await db.redis.del(...keys.slice(i, i + DEL_CHUNK));
  }
}
