// Dead letters and redrive: moving a subscription's entries out of its group into its dead
// letters, and back into delivery.
//
//   park      lua/dead-letter.ts: each copy stored, then acked (a copy Redis refuses stays
//             pending); the dead letters trimmed to DEAD_LETTER_MAX_AGE_MS, _MAX_MESSAGES and
//             _MAX_BYTES, what the bounds remove counted in the subscription's state; the
//             channel's sweep due when the oldest expires, at the latest. Safe to repeat.
//   redrive   lua/redrive.ts: dead letters moved to the subscription's redrive stream, read by its
//             group like the channel (so only this subscription gets them, from attempt 1). A push
//             subscription's redrive unit is woken; a pull subscription's entries get ids 0-<n>
//             and its `<sub>#redrive` marker is set, which tells pulls to look there first.
//   endRedrive lua/redrive-end.ts: the marker goes once the redrive stream is empty (a pull that
//             finds it so), so pulls stop paying for a look there. Safe to repeat.

import type { Config } from "../config.ts";
import { DEAD_LETTERED_COUNTER } from "../counters.ts";
import { StorageFull } from "../errors.ts";
import {
  metricsField,
  redriveField,
  stateField,
  sweepMember,
  type Unit,
  wakeMember,
} from "../keys.ts";
import { DEAD_LETTER_LUA } from "../lua/dead-letter.ts";
import { REDRIVE_LUA } from "../lua/redrive.ts";
import { REDRIVE_END_LUA } from "../lua/redrive-end.ts";
import { asArray, asEntries, asNumber, asString, type Db, runScript } from "../redis.ts";
import type { SubscriptionMode } from "../subscription.ts";
import type { Queue } from "./queue.ts";

/** The bounds of a subscription's dead letters (config: DEAD_LETTER_MAX_*). */
export interface DeadLetterBounds {
  maxAgeMs: number;
  maxMessages: number;
  maxBytes: number;
}

/** The dead-letter bounds the configuration sets. */
export const deadLetterBounds = (config: Config): DeadLetterBounds => ({
  maxAgeMs: config.deadLetterMaxAgeMs,
  maxMessages: config.deadLetterMaxMessages,
  maxBytes: config.deadLetterMaxBytes,
});

/** A message to park: its entry id in the queue, the attempts it had, its last error. */
export interface Letter {
  id: string;
  attempts: number;
  error: string;
}

/**
 * Parks pending messages of queue `q` in the subscription's dead letters (lua/dead-letter.ts, for
 * push and pull alike): each is acked once its copy is stored (taken over by `reader` to be read),
 * and the dead letters are trimmed to `bounds` at `now`. Safe to repeat. Answers how many were
 * parked (the first ones, in order), Redis' refusal ("" if none: those after stay pending), and
 * how many dead letters the bounds removed.
 */
export async function park(
  db: Db,
  q: Queue,
  reader: string,
  letters: Letter[],
  bounds: DeadLetterBounds & { now: number },
): Promise<Parked> {
  const call = parkCall(db, q, reader, letters, bounds);
  return readPark(await runScript(db.redis, call.script, call.keys, call.args));
}

export interface Parked {
  parked: number;
  refusal: string;
  expired: number;
  dropped: number;
}

/** A park as one call of a batch (redis.ts sendBatch); its reply read with readPark. */
export function parkCall(
  db: Db,
  q: Queue,
  reader: string,
  letters: Letter[],
  bounds: DeadLetterBounds & { now: number },
) {
  const field = (fact: "deadLettersExpired" | "deadLettersDropped") =>
    stateField(q.subscription, fact);
  // A dead letter's id is its time of death: those before this one are past the maximum age.
  const minId = `${Math.max(0, bounds.now - bounds.maxAgeMs)}-0`;
  const args = [q.group, reader, q.redrive ? "1" : "0", minId];
  args.push(String(bounds.maxMessages), field("deadLettersExpired"), field("deadLettersDropped"));
  args.push(metricsField(q.subscription, DEAD_LETTERED_COUNTER), String(bounds.maxBytes));
  args.push(String(bounds.maxAgeMs), sweepMember(q.channel));
  for (const d of letters) args.push(d.id, String(d.attempts), d.error);
  const { keys } = db;
  const scriptKeys = [
    q.stream,
    keys.deadLetters(q.channel, q.subscription),
    keys.state(q.channel),
    keys.metrics(q.channel),
    keys.due(),
  ];
  return { script: DEAD_LETTER_LUA, keys: scriptKeys, args };
}

export function readPark(value: unknown): Parked {
  const [parked, refusal, expired, dropped] = asArray(value);
  return {
    parked: asNumber(parked),
    refusal: asString(refusal),
    expired: asNumber(expired),
    dropped: asNumber(dropped),
  };
}

const REDRIVE_BATCH = 500;

/**
 * Puts dead letters back for delivery to this subscription only: all of them, or those whose
 * original message ids are given. Returns how many moved and which given ids were not found.
 */
export async function redrive(
  db: Db,
  sub: { channel: string; name: string; group: string; mode: SubscriptionMode },
  ids: string[] | null,
  now: number,
): Promise<{ redriven: number; missing: string[] }> {
  const { channel, name } = sub;
  const unit: Unit = { channel, subscription: name, kind: "redrive" };
  const keys = [
    db.keys.deadLetters(channel, name),
    db.keys.redrive(channel, name),
    db.keys.due(),
    db.keys.subscriptions(channel),
  ];
  // A push subscription's deliverer is woken; a pull subscription's pulls see its marker, and
  // its redrive stream's ids are 0-<n> (see endRedrive).
  const pull = sub.mode === "pull";
  const run = async (entryIds: string[], before: number) => {
    const args = [sub.group, pull ? "" : wakeMember(unit), String(now), String(REDRIVE_BATCH)];
    args.push(pull ? redriveField(name) : "", pull ? "0-*" : "*");
    const reply = asArray(await runScript(db.redis, REDRIVE_LUA, keys, [...args, ...entryIds]));
    const [moved, refused, ...missing] = reply;
    if (asString(refused) !== "") {
      const done = before + asNumber(moved);
      throw new StorageFull(
        `redrove ${done} dead letter(s) of "${name}", then Redis refused more ` +
          `(${asString(refused)}); the rest are still dead letters`,
      );
    }
    return { moved: asNumber(moved), missing: missing.map(asString) };
  };
  if (ids === null) {
    let redriven = 0;
    for (;;) {
      const { moved } = await run([], redriven);
      redriven += moved;
      if (moved < REDRIVE_BATCH) return { redriven, missing: [] };
    }
  }
  // The API names messages by their original id; the script moves dead-letter entries by theirs.
  const entryIds = await findEntries(db, channel, name, ids);
  // The script reads no ids as "the oldest": found none, move none.
  if (entryIds.size === 0) return { redriven: 0, missing: ids };
  const { moved, missing } = await run([...entryIds.values()], 0);
  const notFound = ids.filter((id) => !entryIds.has(id));
  return { redriven: moved, missing: [...notFound, ...missing] };
}

// Pages through the dead letters (oldest first) until every wanted original id is found.
async function findEntries(db: Db, channel: string, name: string, ids: string[]) {
  const wanted = new Set(ids);
  const found = new Map<string, string>();
  const key = db.keys.deadLetters(channel, name);
  let start = "-";
  while (found.size < wanted.size) {
    const entries = asEntries(await db.redis.xrange(key, start, "+", REDRIVE_BATCH));
    for (const { id, fields } of entries) {
      if (fields?.o && wanted.has(fields.o)) found.set(fields.o, id);
    }
    if (entries.length < REDRIVE_BATCH) break;
    start = `(${entries.at(-1)!.id}`;
  }
  return found;
}

/** Removes a pull subscription's redrive marker if its redrive stream is empty; true if it did. */
export async function endRedrive(db: Db, sub: { channel: string; name: string }): Promise<boolean> {
  const keys = [db.keys.redrive(sub.channel, sub.name), db.keys.subscriptions(sub.channel)];
  return asNumber(await runScript(db.redis, REDRIVE_END_LUA, keys, [redriveField(sub.name)])) === 1;
}
