// What the worker writes after a batch (a "settlement"): acks, dead letters, the retry schedule
// and the delivery state; on its own, together with the next read (one round trip per read), or
// with the close script that lets go of a unit only if nothing new arrived (lua/close.ts).

import { deadLetterFields } from "./dead-letters.ts";
import { CONSUMER, retryMember, stateField, type Unit, wakeMember } from "./keys.ts";
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
    success: b.success ?? a.success,
    failure: b.failure ?? a.failure,
  };
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
