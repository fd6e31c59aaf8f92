// Dead letters: messages that kept failing, parked per subscription in {p}:dlq:<ch>:<sub> with
// their last error. The entry id is the time of death; the fields are o (the original message
// id), t (type), d (data JSON), a (attempts made), e (last error). The worker trims them to
// DEAD_LETTER_MAX_AGE_MS and DEAD_LETTER_MAX_MESSAGES (lua/dead-letter.ts), counting what it
// trims in the subscription's state.

import { StorageFull } from "./errors.ts";
import type { Unit } from "./keys.ts";
import { redriveField, stateField, wakeMember } from "./keys.ts";
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
