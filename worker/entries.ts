// What the worker delivers: a unit (one consumer group's stream) and the entries it reads from
// it. Pure: the shapes, and the turning of stream entries into messages.

import type { Unit } from "../shared/keys.ts";
import type { StreamEntry } from "../shared/redis.ts";
import { type StoredMessage, toStoredMessage } from "../shared/streams.ts";

/** A unit as the worker works on it: which group reads which stream. */
export interface WorkUnit extends Unit {
  /** The subscription's consumer group (subscription.ts: named after its identity). */
  group: string;
  /** The key of the stream the group reads. */
  stream: string;
}

/** A message as a unit holds it: its entry in the unit's stream, and how often it was sent. */
export interface UnitEntry {
  /** The entry id in the unit's stream (what XACK and XCLAIM take). */
  entryId: string;
  /** The message; for a redrive unit, `id` is the original message id. */
  message: StoredMessage;
  /** Attempts made so far, this one included once it is sent. */
  attempt: number;
  /** About how many bytes it takes in a webhook body. */
  bytes: number;
}

// The body's JSON around one message's data: id, type, publishedAt, attempt and punctuation.
const ENVELOPE_BYTES = 160;

export function toUnitEntry(unit: Unit, entry: StreamEntry, attempt: number): UnitEntry {
  const message = toStoredMessage(entry);
  const original = entry.fields?.o;
  if (unit.kind === "redrive" && original) {
    message.id = original;
    message.publishedAt = toStoredMessage({ id: original, fields: {} }).publishedAt;
  }
  const bytes = ENVELOPE_BYTES + message.data.length + (message.type?.length ?? 0);
  return { entryId: entry.id, message, attempt, bytes };
}

/** Entries split into those still in the stream and the ids of those deleted from it. */
export function toUnitEntries(unit: Unit, entries: StreamEntry[], attempt: number) {
  const live: UnitEntry[] = [];
  const deleted: string[] = [];
  for (const entry of entries) {
    if (entry.fields === null) deleted.push(entry.id);
    else live.push(toUnitEntry(unit, entry, attempt));
  }
  return { live, deleted };
}
