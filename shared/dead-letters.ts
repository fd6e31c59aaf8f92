// Dead letters: messages that kept failing, parked per subscription in {p}:dlq:<ch>:<sub> with
// their last error. The entry id is the time of death; the fields are o (the original message
// id), t (type), d (data JSON), a (attempts made), e (last error). The worker trims them to
// DEAD_LETTER_MAX_AGE_MS and DEAD_LETTER_MAX_MESSAGES (lua/dead-letter.ts), counting what it
// trims in the subscription's state.

import { DEAD_LETTERED_COUNTER } from "./counters.ts";
import { StorageFull } from "./errors.ts";
import type { Unit } from "./keys.ts";
import { metricsField, redriveField, stateField, wakeMember } from "./keys.ts";
import { DEAD_LETTER_LUA } from "./lua/dead-letter.ts";
import { REDRIVE_LUA } from "./lua/redrive.ts";
import {
  asArray,
  asEntries,
  asNumber,
  asOptionalString,
  asString,
  type Db,
  runScript,
} from "./redis.ts";
import { idTime, readPage } from "./streams.ts";
import type { SubscriptionMode } from "./subscription.ts";

/** The bounds of a subscription's dead letters (config: DEAD_LETTER_MAX_*). */
export interface DeadLetterBounds {
  maxAgeMs: number;
  maxMessages: number;
}

/** Where messages are parked from: a subscription's stream (channel or redrive) and consumer. */
export interface ParkFrom {
  channel: string;
  subscription: string;
  stream: string;
  group: string;
  consumer: string;
  /** The stream is the subscription's redrive stream: parked entries are deleted from it too. */
  redrive: boolean;
}

/**
 * Parks pending messages in the dead letters (lua/dead-letter.ts, for the deliverer and for pulls
 * alike): each is acked once its copy is stored, and the dead letters are trimmed to `bounds` at
 * `now`. Safe to repeat. Answers how many were parked, Redis' refusal ("" if none), and how many
 * dead letters the bounds removed.
 */
export async function parkPending(
  db: Db,
  from: ParkFrom,
  letters: { id: string; attempts: number; error: string }[],
  bounds: DeadLetterBounds & { now: number },
) {
  const field = (fact: "deadLettersExpired" | "deadLettersDropped") =>
    stateField(from.subscription, fact);
  // A dead letter's id is its time of death: those before this one are past the maximum age.
  const minId = `${Math.max(0, bounds.now - bounds.maxAgeMs)}-0`;
  const args = [from.group, from.consumer, from.redrive ? "1" : "0", minId];
  args.push(String(bounds.maxMessages), field("deadLettersExpired"), field("deadLettersDropped"));
  args.push(metricsField(from.subscription, DEAD_LETTERED_COUNTER));
  for (const d of letters) args.push(d.id, String(d.attempts), d.error);
  const { keys } = db;
  const reply = asArray(
    await runScript(
      db.redis,
      DEAD_LETTER_LUA,
      [
        from.stream,
        keys.deadLetters(from.channel, from.subscription),
        keys.state(from.channel),
        keys.metrics(from.channel),
      ],
      args,
    ),
  );
  const [parked, refusal, expired, dropped] = reply;
  return {
    parked: asNumber(parked),
    refusal: asString(refusal),
    expired: asNumber(expired),
    dropped: asNumber(dropped),
  };
}

export interface DeadLetter {
  id: string;
  type: string | null;
  /** The message data as JSON text. */
  data: string;
  publishedAt: string;
  attempts: number;
  lastError: string;
  deadAt: string;
}

/**
 * A page of dead letters, oldest first, after `after` (an entry id, exclusive); bounded in bytes
 * like a page of history (streams.ts readPage). With it, how many dead letters the bounds have
 * trimmed so far: `expired` for age, `dropped` for count.
 */
export async function listDeadLetters(
  db: Db,
  channel: string,
  name: string,
  page: { after?: string | undefined; limit: number },
  maxMessageBytes: number,
): Promise<{ messages: DeadLetter[]; next: string | null; expired: number; dropped: number }> {
  const key = db.keys.deadLetters(channel, name);
  const trimmed = [stateField(name, "deadLettersExpired"), stateField(name, "deadLettersDropped")];
  const [{ entries, more }, counts] = await Promise.all([
    readPage(db, key, page, maxMessageBytes),
    db.redis.hmget(db.keys.state(channel), ...trimmed),
  ]);
  const [expired, dropped] = asArray(counts).map((n) => Number(asOptionalString(n) ?? 0));
  const messages = (entries ?? []).map(({ id, fields: stored }) => {
    const fields = stored ?? {};
    const original = fields.o ?? id;
    return {
      id: original,
      type: fields.t ?? null,
      data: fields.d ?? "null",
      publishedAt: new Date(idTime(original)).toISOString(),
      attempts: Number(fields.a ?? 0),
      lastError: fields.e ?? "",
      deadAt: new Date(idTime(id)).toISOString(),
    };
  });
  const next = more ? (entries?.at(-1)?.id ?? null) : null;
  return { messages, next, expired: expired ?? 0, dropped: dropped ?? 0 };
}

const REDRIVE_BATCH = 500;

/**
 * Puts dead letters back for delivery to this subscription only: all of them, or those whose
 * original message ids are given. Returns how many moved and which given ids were not found.
 */
export async function redriveDeadLetters(
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
  // its redrive stream's ids are 0-<n> (shared/pull-redrive.ts).
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

/** Deletes every dead letter of the subscription; returns how many there were. */
export async function purgeDeadLetters(db: Db, channel: string, name: string): Promise<number> {
  const key = db.keys.deadLetters(channel, name);
  const [length] = await db.redis.pipeline().xlen(key).del(key).exec<[unknown, unknown]>();
  return asNumber(length);
}
