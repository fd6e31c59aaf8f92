// settle: the pure fold from outcomes to what must be written to Redis. No I/O: store.ts writes
// a `Writes` in whichever round trip comes next (with the next read, the close, or the finish).
//
// The delivery state (failures in a row, last error, last success) and the delivery counters
// (shared/counters.ts) are folded too but written once per drain, not once per read: at batch
// size 1 each would be more commands per message. The attempt log's records ride with the next
// round trip (one XADD each), like the acks.

import type { AttemptRecord } from "../shared/attempt-log.ts";
import type { StateFact, UnitKind } from "../shared/keys.ts";
import { type Attempt, addCounts, type Counts, countAttempts, noCounts } from "./attempts.ts";
import type { Outcome } from "./judge.ts";

export interface DeadLetter {
  entryId: string;
  attempts: number;
  error: string;
}

/** What the worker owes Redis after some batches. */
export interface Writes {
  /** Entry ids to XACK (and XDEL on a redrive stream): delivered and filtered ones. */
  ack: string[];
  /** Messages to park in the dead letters; acked by the same script once stored. */
  dead: DeadLetter[];
  /** Move the unit's retry member to this time if earlier (ZADD LT); null: nothing new to retry. */
  retryAt: number | null;
  /** Webhook requests made since the last write: the attempt log's new records, oldest first. */
  attempts: AttemptRecord[];
  state: StateChange;
}

/** What happened to the subscription's requests since the state was last written. */
export interface StateChange {
  /** When the endpoint last accepted a request (2xx), and the last entry it acked then. */
  success: { at: number; lastAckedId: string | null } | null;
  /** Failed requests after that success (all of them when none succeeded). */
  failuresSince: number;
  /** The last error: a failed request, or messages the endpoint rejected. */
  error: { at: number; error: string } | null;
  /** The delivery counters' deltas (requests by result, delivered messages by latency). */
  counts: Counts;
}

export const noState = (): StateChange => ({
  success: null,
  failuresSince: 0,
  error: null,
  counts: noCounts(),
});

export const noWrites = (): Writes => ({
  ack: [],
  dead: [],
  retryAt: null,
  attempts: [],
  state: noState(),
});

const earlier = (a: number | null, b: number | null) =>
  a === null ? b : b === null ? a : Math.min(a, b);

/** The writes after one more outcome. `kind` decides whether lastAckedId is tracked. */
export function fold(w: Writes, outcome: Outcome, kind: UnitKind): Writes {
  switch (outcome.kind) {
    case "filtered":
      return { ...w, ack: [...w.ack, ...outcome.entries.map((e) => e.entryId)] };
    case "delivered": {
      // The last id acked on the channel stream is where a lost group is recreated (keys.ts); a
      // redrive stream's ids say nothing about the channel, so they are never recorded.
      const lastAckedId = kind === "main" ? outcome.entries.at(-1)!.entryId : null;
      const success = {
        at: outcome.at,
        lastAckedId: lastAckedId ?? w.state.success?.lastAckedId ?? null,
      };
      return {
        ...w,
        ack: [...w.ack, ...outcome.entries.map((e) => e.entryId)],
        state: { ...w.state, success, failuresSince: 0 },
      };
    }
    case "rejected":
      return {
        ...w,
        dead: [...w.dead, ...deadLetters(outcome.dead, outcome.reason)],
        retryAt: earlier(w.retryAt, outcome.retryAt),
        state: { ...w.state, error: { at: outcome.at, error: outcome.reason } },
      };
    case "failed":
      return {
        ...w,
        dead: [...w.dead, ...deadLetters(outcome.dead, outcome.reason)],
        state: {
          ...w.state,
          failuresSince: w.state.failuresSince + 1,
          error: { at: outcome.at, error: outcome.reason },
        },
      };
    case "gone":
      return {
        ...w,
        state: {
          ...w.state,
          failuresSince: w.state.failuresSince + 1,
          error: { at: outcome.at, error: `${outcome.reason}; subscription paused` },
        },
      };
  }
}

export const foldAll = (w: Writes, outcomes: Outcome[], kind: UnitKind) =>
  outcomes.reduce((acc, o) => fold(acc, o, kind), w);

/** The writes after some requests: their records to log, their counts to add. */
export function recordAttempts(w: Writes, attempts: Attempt[]): Writes {
  if (attempts.length === 0) return w;
  return {
    ...w,
    attempts: [...w.attempts, ...attempts.map((a) => a.record)],
    state: { ...w.state, counts: countAttempts(w.state.counts, attempts) },
  };
}

/** What sending some batches leaves to write: their outcomes folded, their requests recorded. */
export const foldSent = (
  w: Writes,
  sent: { outcomes: Outcome[]; attempts: Attempt[] },
  kind: UnitKind,
) => recordAttempts(foldAll(w, sent.outcomes, kind), sent.attempts);

/** Two writes as one: b is the later. */
export function merge(a: Writes, b: Writes): Writes {
  return {
    ack: [...a.ack, ...b.ack],
    dead: [...a.dead, ...b.dead],
    retryAt: earlier(a.retryAt, b.retryAt),
    attempts: [...a.attempts, ...b.attempts],
    state: {
      success: b.state.success ?? a.state.success,
      failuresSince:
        b.state.success !== null
          ? b.state.failuresSince
          : a.state.failuresSince + b.state.failuresSince,
      error: b.state.error ?? a.state.error,
      counts: addCounts(a.state.counts, b.state.counts),
    },
  };
}

/** The writes without their state change, and the change kept for the end of the drain. */
export function holdState(w: Writes): [Writes, StateChange] {
  return [{ ...w, state: noState() }, w.state];
}

/** Anything to write before the next read? (The state waits for the end of the drain.) */
export const hasWrites = (w: Writes) =>
  w.ack.length + w.dead.length + w.attempts.length > 0 || w.retryAt !== null;

/** Outcomes that end the unit's visit: the endpoint failed with messages to retry, or is gone. */
export function stops(outcome: Outcome): boolean {
  return outcome.kind === "gone" || (outcome.kind === "failed" && outcome.retry.length > 0);
}

function deadLetters(entries: { entryId: string; attempt: number }[], error: string) {
  return entries.map((e) => ({ entryId: e.entryId, attempts: e.attempt, error }));
}

export type StateFields = { set: Record<string, string>; increment: number };

/**
 * The state hash writes for a change: fields to HSET, and failures to HINCRBY when no request
 * succeeded since the last write (the count of consecutive failures grows from what it was).
 */
export function stateWrites(change: StateChange, field: (fact: StateFact) => string): StateFields {
  const set: Record<string, string> = {};
  let increment = 0;
  if (change.success) {
    set[field("failures")] = String(change.failuresSince);
    set[field("lastSuccessAt")] = String(change.success.at);
    if (change.success.lastAckedId) set[field("lastAckedId")] = change.success.lastAckedId;
  } else {
    increment = change.failuresSince;
  }
  if (change.error) {
    set[field("lastError")] = change.error.error;
    set[field("lastErrorAt")] = String(change.error.at);
  }
  return { set, increment };
}
