// The delivery worker's reads on units. A unit is what one consumer group reads: a
// subscription's group on the channel stream ("main") or on its redrive stream ("redrive"); see
// keys.ts. New entries arrive with the writes of settlement.ts; pending ones are listed, claimed
// for another attempt, or handed back here. The worker never spells a key or runs a script.

import { CONSUMER, type Unit } from "./keys.ts";
import {
  asArray,
  asFields,
  asNumber,
  asStreams,
  asString,
  type Db,
  type StreamEntry,
} from "./redis.ts";
import { type StoredMessage, toStoredMessage } from "./streams.ts";

/** A message as a unit holds it: its entry in the unit's stream, and how often it was sent. */
export interface UnitEntry {
  /** The entry id in the unit's stream (what XACK and XCLAIM take). */
  entryId: string;
  /** The message; for a redrive unit, `id` is the original message id. */
  message: StoredMessage;
  /** Attempts made so far, this one included once it is sent (the PEL's delivery count). */
  attempt: number;
}

function toUnitEntry(unit: Unit, entry: StreamEntry, attempt: number): UnitEntry {
  const message = toStoredMessage(entry);
  if (unit.kind === "redrive" && entry.fields.o) {
    message.id = entry.fields.o;
    message.publishedAt = toStoredMessage({ id: entry.fields.o, fields: {} }).publishedAt;
  }
  return { entryId: entry.id, message, attempt };
}

/** The unit's entries in an XREADGROUP reply (the close script returns one too). */
export function readEntries(db: Db, unit: Unit, reply: unknown): UnitEntry[] {
  const entries = asStreams(reply).get(db.keys.unitStream(unit)) ?? [];
  return entries.map((entry) => toUnitEntry(unit, entry, 1));
}

/**
 * Entries read ahead but never sent (the batch before them failed): they stay pending, with
 * their delivery count set back to 0 (XCLAIM ... RETRYCOUNT 0 JUSTID), so the attempt they never
 * had is not counted against maxAttempts.
 */
export async function resetUnsent(db: Db, unit: Unit, entryIds: string[]): Promise<void> {
  // Raw: @upstash/redis' xclaim drops a RETRYCOUNT of 0 (it tests the option for truthiness).
  await db.redis.exec([
    "XCLAIM",
    db.keys.unitStream(unit),
    unit.subscription,
    CONSUMER,
    "0",
    ...entryIds,
    "RETRYCOUNT",
    "0",
    "JUSTID",
  ]);
}

/** How many entries the unit's consumer has pending (XPENDING's summary form). */
export async function pendingCount(db: Db, unit: Unit): Promise<number> {
  // @upstash/redis only types the extended form; the summary form is one cheap reply.
  const summary = await db.redis.exec(["XPENDING", db.keys.unitStream(unit), unit.subscription]);
  return asNumber(asArray(summary)[0] ?? 0);
}

export interface PendingEntry {
  entryId: string;
  idleMs: number;
  /** Attempts made so far. */
  deliveries: number;
}

/** The unit's pending entries, oldest first (at most 1,000: Upstash's per-consumer ceiling). */
export async function pendingEntries(db: Db, unit: Unit): Promise<PendingEntry[]> {
  const reply = await db.redis.xpending(
    db.keys.unitStream(unit),
    unit.subscription,
    "-",
    "+",
    1000,
  );
  return asArray(reply).map((raw) => {
    const [id, , idle, count] = asArray(raw);
    return { entryId: asString(id), idleMs: asNumber(idle), deliveries: asNumber(count) };
  });
}

/**
 * Takes pending entries for another attempt (XCLAIM: resets their idle time, counts the
 * delivery). Entries deleted from the stream meanwhile come back missing; they are acked away.
 */
export async function claim(db: Db, unit: Unit, pending: PendingEntry[]): Promise<UnitEntry[]> {
  if (pending.length === 0) return [];
  const stream = db.keys.unitStream(unit);
  const ids = pending.map((p) => p.entryId);
  const reply = await db.redis.xclaim(stream, unit.subscription, CONSUMER, 0, ids);
  const deliveries = new Map(pending.map((p) => [p.entryId, p.deliveries]));
  const claimed: UnitEntry[] = [];
  for (const raw of asArray(reply)) {
    if (raw === null) continue;
    const [id, fields] = asArray(raw);
    const entry = { id: asString(id), fields: asFields(fields) };
    claimed.push(toUnitEntry(unit, entry, (deliveries.get(entry.id) ?? 0) + 1));
  }
  const gone = ids.filter((id) => !claimed.some((c) => c.entryId === id));
  if (gone.length > 0) await db.redis.xack(stream, unit.subscription, gone);
  return claimed;
}
