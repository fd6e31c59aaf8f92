// The delivery worker's Redis operations on units. A unit is what one consumer group reads: a
// subscription's group on the channel stream ("main") or on its redrive stream ("redrive"); see
// keys.ts. Reads, acks, claims, dead-lettering, the schedule in {p}:due and the lease all go
// through here, so the worker never spells a key or runs a script itself.

import { deadLetterFields } from "./dead-letters.ts";
import { CONSUMER, retryMember, stateField, type Unit, wakeMember } from "./keys.ts";
import { CLOSE_LUA } from "./lua/close.ts";
import {
  asArray,
  asFields,
  asNumber,
  asStreams,
  asString,
  type Db,
  runScript,
  type StreamEntry,
} from "./redis.ts";
import { type StoredMessage, toStoredMessage } from "./streams.ts";

type Pipeline = ReturnType<Db["redis"]["pipeline"]>;

/** A message as a unit holds it: its entry in the unit's stream, and how often it was sent. */
export interface UnitEntry {
  /** The entry id in the unit's stream (what XACK and XCLAIM take). */
  entryId: string;
  /** The message; for a redrive unit, `id` is the original message id. */
  message: StoredMessage;
  /** Attempts made so far, this one included once it is sent (the PEL's delivery count). */
  attempt: number;
}

export interface DeadLetterRecord {
  entry: UnitEntry;
  error: string;
}

/** What to write after a batch: the acks and the bookkeeping that goes with them. */
export interface Settlement {
  /** Entry ids to XACK: delivered, filtered out, and dead-lettered ones. */
  ack: string[];
  /** Messages to park in the dead-letter stream (their entry ids are in `ack`). */
  dead: DeadLetterRecord[];
  /** Move the unit's retry member to this time if earlier (ZADD LT); null: no new failures. */
  retryAt: number | null;
  /** The endpoint accepted a request: reset the failure count. */
  success: { at: number; lastAckedId: string | null } | null;
  /** The endpoint failed a request. */
  failure: { at: number; error: string } | null;
}

export const emptySettlement = (): Settlement => ({
  ack: [],
  dead: [],
  retryAt: null,
  success: null,
  failure: null,
});

function toUnitEntry(unit: Unit, entry: StreamEntry, attempt: number): UnitEntry {
  const message = toStoredMessage(entry);
  if (unit.kind === "redrive" && entry.fields.o) {
    message.id = entry.fields.o;
    message.publishedAt = toStoredMessage({ id: entry.fields.o, fields: {} }).publishedAt;
  }
  return { entryId: entry.id, message, attempt };
}

function readEntries(db: Db, unit: Unit, reply: unknown): UnitEntry[] {
  const entries = asStreams(reply).get(db.keys.unitStream(unit)) ?? [];
  return entries.map((entry) => toUnitEntry(unit, entry, 1));
}

// The commands a settlement adds to a pipeline. Acks are left to the close script when
// `withAcks` is false; the success state only goes with `withState` (once per visit, not once
// per batch: at batch size 1 it would be a third command per message). Dead letters are written
// before the ack, so a crash in between leaves the message pending (sent again) rather than lost.
function queueSettlement(
  db: Db,
  pipeline: Pipeline,
  unit: Unit,
  s: Settlement,
  withAcks: boolean,
  withState: boolean,
) {
  const { keys } = db;
  const stream = keys.unitStream(unit);
  for (const { entry, error } of s.dead) {
    const fields = deadLetterFields({ ...entry.message, attempts: entry.attempt, error });
    pipeline.xadd(keys.deadLetters(unit.channel, unit.subscription), "*", fields);
  }
  if (withAcks && s.ack.length > 0) {
    pipeline.xack(stream, unit.subscription, s.ack);
    if (unit.kind === "redrive") pipeline.xdel(stream, s.ack);
  }
  if (s.retryAt !== null) {
    pipeline.zadd(keys.due(), { lt: true }, { score: s.retryAt, member: retryMember(unit) });
  }
  const state = keys.state(unit.channel);
  if (s.failure) {
    pipeline.hincrby(state, stateField(unit.subscription, "failures"), 1);
    pipeline.hset(state, {
      [stateField(unit.subscription, "lastError")]: s.failure.error,
      [stateField(unit.subscription, "lastErrorAt")]: String(s.failure.at),
    });
  }
  if (withState && s.success) pipeline.hset(state, successFields(unit, s.success));
}

function successFields(unit: Unit, success: NonNullable<Settlement["success"]>) {
  const fields: Record<string, string> = {
    [stateField(unit.subscription, "failures")]: "0",
    [stateField(unit.subscription, "lastSuccessAt")]: String(success.at),
  };
  if (success.lastAckedId && unit.kind === "main") {
    fields[stateField(unit.subscription, "lastAckedId")] = success.lastAckedId;
  }
  return fields;
}

const hasWork = (s: Settlement) =>
  s.ack.length > 0 ||
  s.dead.length > 0 ||
  s.retryAt !== null ||
  s.failure !== null ||
  s.success !== null;

/** Writes a settlement on its own (one round trip). */
export async function settle(db: Db, unit: Unit, s: Settlement): Promise<void> {
  if (!hasWork(s)) return;
  const pipeline = db.redis.pipeline();
  queueSettlement(db, pipeline, unit, s, true, true);
  await pipeline.exec();
}

/**
 * Writes the previous batch's settlement (but its success state: the caller carries that to the
 * close) and reads up to `count` new entries, in one round trip: 1 XREADGROUP + 1 XACK per batch
 * when everything was delivered.
 */
export async function settleAndRead(db: Db, unit: Unit, s: Settlement, count: number) {
  const pipeline = db.redis.pipeline();
  queueSettlement(db, pipeline, unit, s, true, false);
  pipeline.xreadgroup(unit.subscription, CONSUMER, db.keys.unitStream(unit), ">", { count });
  const replies = await pipeline.exec<unknown[]>();
  return readEntries(db, unit, replies.at(-1));
}

/**
 * Writes the last settlement, then lets go of the unit if nothing new arrived (lua/close.ts):
 * returns the new entries to keep delivering, or null when the wake member (and, with
 * `release`, the lease) are gone.
 */
export async function settleAndClose(
  db: Db,
  unit: Unit,
  s: Settlement,
  count: number,
  release: boolean,
): Promise<UnitEntry[] | null> {
  if (s.dead.length > 0 || s.retryAt !== null || s.failure) {
    const pipeline = db.redis.pipeline();
    queueSettlement(db, pipeline, unit, s, false, false);
    await pipeline.exec();
  }
  const { keys } = db;
  const state = s.success ? Object.entries(successFields(unit, s.success)).flat() : [];
  const reply = await runScript(
    db,
    CLOSE_LUA,
    [
      keys.unitStream(unit),
      keys.due(),
      keys.lease(unit.channel, unit.subscription),
      keys.state(unit.channel),
    ],
    [
      unit.subscription,
      CONSUMER,
      String(count),
      wakeMember(unit),
      release ? "1" : "0",
      unit.kind === "redrive" ? "1" : "0",
      String(s.ack.length),
      ...s.ack,
      ...state,
    ],
  );
  return reply === null ? null : readEntries(db, unit, reply);
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
