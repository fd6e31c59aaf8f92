// Dead letters: messages that kept failing, parked per subscription in {p}:dlq:<ch>:<sub> with
// their last error. The entry id is the time of death; the fields are o (the original message
// id), t (type), d (data JSON), a (attempts made), e (last error).

import type { Unit } from "./keys.ts";
import { wakeMember } from "./keys.ts";
import { REDRIVE_LUA } from "./lua/redrive.ts";
import { asArray, asEntries, asNumber, asString, type Db, runScript } from "./redis.ts";
import { idTime } from "./streams.ts";

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

/** The fields of a dead-letter entry, for the worker's XADD. */
export function deadLetterFields(message: {
  id: string;
  type: string | null;
  data: string;
  attempts: number;
  error: string;
}): Record<string, string> {
  const fields: Record<string, string> = { o: message.id };
  if (message.type !== null) fields.t = message.type;
  fields.d = message.data;
  fields.a = String(message.attempts);
  fields.e = message.error;
  return fields;
}

/** A page of dead letters, oldest first, after `after` (an entry id, exclusive). */
export async function listDeadLetters(
  db: Db,
  channel: string,
  name: string,
  page: { after?: string | undefined; limit: number },
): Promise<{ messages: DeadLetter[]; next: string | null }> {
  const start = page.after ? `(${page.after}` : "-";
  const raw = await db.redis.xrange(db.keys.deadLetters(channel, name), start, "+", page.limit + 1);
  const entries = asEntries(raw);
  const messages = entries.slice(0, page.limit).map(({ id, fields }) => {
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
  const more = entries.length > page.limit;
  return { messages, next: more ? (entries[page.limit - 1]?.id ?? null) : null };
}

const REDRIVE_BATCH = 500;

/**
 * Puts dead letters back for delivery to this subscription only: all of them, or those whose
 * original message ids are given. Returns how many moved and which given ids were not found.
 */
export async function redriveDeadLetters(
  db: Db,
  channel: string,
  name: string,
  ids: string[] | null,
): Promise<{ redriven: number; missing: string[] }> {
  const unit: Unit = { channel, subscription: name, kind: "redrive" };
  const keys = [db.keys.deadLetters(channel, name), db.keys.redrive(channel, name), db.keys.due()];
  const run = async (entryIds: string[]) => {
    const args = [name, wakeMember(unit), String(Date.now()), String(REDRIVE_BATCH), ...entryIds];
    const [moved, ...missing] = asArray(await runScript(db, REDRIVE_LUA, keys, args));
    return { moved: asNumber(moved), missing: missing.map(asString) };
  };
  if (ids === null) {
    let redriven = 0;
    for (;;) {
      const { moved } = await run([]);
      redriven += moved;
      if (moved < REDRIVE_BATCH) return { redriven, missing: [] };
    }
  }
  // The API names messages by their original id; the script moves dead-letter entries by theirs.
  const entryIds = await findEntries(db, channel, name, ids);
  const { moved, missing } = await run([...entryIds.values()]);
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
      if (fields.o && wanted.has(fields.o)) found.set(fields.o, id);
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
