// What the worker writes after a batch (a "settlement"): acks, dead letters, the retry schedule
// and the delivery state; on its own, together with the next read (one round trip per read), or
// with the close script that lets go of a unit only if nothing new arrived (lua/close.ts).

import { deadLetterFields } from "./dead-letters.ts";
import {
  CONSUMER,
  retryMember,
  type StateFact,
  stateField,
  type Unit,
  wakeMember,
} from "./keys.ts";
import { CLOSE_LUA } from "./lua/close.ts";
import { type Db, runScript } from "./redis.ts";
import { readEntries, type UnitEntry } from "./units.ts";

type Pipeline = ReturnType<Db["redis"]["pipeline"]>;

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
  /** The delivery state to record; written once per drain, not once per batch. */
  state: StateChange;
}

/** What happened to the subscription's requests since the state was last written. */
export interface StateChange {
  /** When the endpoint last accepted a request (2xx), and the last entry id it acked then. */
  success: { at: number; lastAckedId: string | null } | null;
  /** Failed requests after that success (all of them when none succeeded). */
  failuresSince: number;
  /** The last error: a failed request, or messages the endpoint rejected. */
  error: { at: number; error: string } | null;
}

const noChange = (): StateChange => ({ success: null, failuresSince: 0, error: null });

export const emptySettlement = (): Settlement => ({
  ack: [],
  dead: [],
  retryAt: null,
  state: noChange(),
});

/** Two settlements as one write: b is the later one. */
export function mergeSettlements(a: Settlement, b: Settlement): Settlement {
  const retryAt =
    a.retryAt === null
      ? b.retryAt
      : b.retryAt === null
        ? a.retryAt
        : Math.min(a.retryAt, b.retryAt);
  return {
    ack: [...a.ack, ...b.ack],
    dead: [...a.dead, ...b.dead],
    retryAt,
    state: {
      success: b.state.success ?? a.state.success,
      failuresSince:
        b.state.success !== null
          ? b.state.failuresSince
          : a.state.failuresSince + b.state.failuresSince,
      error: b.state.error ?? a.state.error,
    },
  };
}

/** The same settlement, its state change kept back for a later write (the end of the drain). */
export function withoutState(s: Settlement): [Settlement, StateChange] {
  return [{ ...s, state: noChange() }, s.state];
}

// The commands a settlement adds to a pipeline (the acks too, unless the close script does
// them). Dead letters are written before the ack, so a crash in between leaves the message
// pending (sent again) rather than lost.
function queueSettlement(db: Db, pipeline: Pipeline, unit: Unit, s: Settlement, withAcks: boolean) {
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
  const { set, increment } = stateWrites(unit, s.state);
  queueIncrement(db, pipeline, unit, increment);
  if (Object.keys(set).length > 0) pipeline.hset(keys.state(unit.channel), set);
}

function queueIncrement(db: Db, pipeline: Pipeline, unit: Unit, increment: number) {
  if (increment === 0) return;
  const field = stateField(unit.subscription, "failures");
  pipeline.hincrby(db.keys.state(unit.channel), field, increment);
}

// 1 HSET, or 1 HSET + 1 HINCRBY when no request succeeded since the last write (the count of
// consecutive failures then grows from what it was).
function stateWrites(unit: Unit, change: StateChange) {
  const field = (fact: StateFact) => stateField(unit.subscription, fact);
  const set: Record<string, string> = {};
  let increment = 0;
  if (change.success) {
    set[field("failures")] = String(change.failuresSince);
    set[field("lastSuccessAt")] = String(change.success.at);
    if (change.success.lastAckedId && unit.kind === "main") {
      set[field("lastAckedId")] = change.success.lastAckedId;
    }
  } else {
    increment = change.failuresSince;
  }
  if (change.error) {
    set[field("lastError")] = change.error.error;
    set[field("lastErrorAt")] = String(change.error.at);
  }
  return { set, increment };
}

const hasWork = (s: Settlement) =>
  s.ack.length > 0 ||
  s.dead.length > 0 ||
  s.retryAt !== null ||
  s.state.success !== null ||
  s.state.failuresSince > 0 ||
  s.state.error !== null;

/** Writes a settlement on its own (one round trip). */
export async function settle(db: Db, unit: Unit, s: Settlement): Promise<void> {
  if (!hasWork(s)) return;
  const pipeline = db.redis.pipeline();
  queueSettlement(db, pipeline, unit, s, true);
  await pipeline.exec();
}

/**
 * Writes a settlement (the caller keeps its state change back for the end of the drain: see
 * withoutState) and reads up to `count` new entries, in one round trip: 1 XACK + 1 XREADGROUP
 * per read when everything was delivered.
 */
export async function settleAndRead(db: Db, unit: Unit, s: Settlement, count: number) {
  const pipeline = db.redis.pipeline();
  queueSettlement(db, pipeline, unit, s, true);
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
  // Dead letters, the retry time and a failure count go first; the acks and the state's fields
  // ride in the close script.
  const { set, increment } = stateWrites(unit, s.state);
  if (s.dead.length > 0 || s.retryAt !== null || increment > 0) {
    const pipeline = db.redis.pipeline();
    queueSettlement(db, pipeline, unit, { ...s, state: noChange() }, false);
    queueIncrement(db, pipeline, unit, increment);
    await pipeline.exec();
  }
  const { keys } = db;
  const state = Object.entries(set).flat();
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
