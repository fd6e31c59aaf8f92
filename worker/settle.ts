// settle: the pure fold of a deliverer's run. Each request's outcome (judge.ts) and each batch it
// gives back unsent become what it owes Redis (`Owed`: acks, nacks at a time, dead letters,
// attempt records, what moves the window of requests in flight), which the next take or the run's end carries (drive.ts), and its progress
// (`Progress`: the tally, the delivery state and counters its report writes once, and whether it
// must stop). No I/O and no clock: the time comes in with the event.

import type { AttemptRecord } from "../shared/attempt-log.ts";
import type { Letter } from "../shared/engine/dead-letters.ts";
import type { Signals, Taken } from "../shared/engine/take.ts";
import type { StateFact, UnitKind } from "../shared/keys.ts";
import { type Attempt, type Counts, countAttempts, noCounts } from "./attempts.ts";
import type { Outcome } from "./judge.ts";

/** Entries to make visible again at `at`; with `retryCount`, their attempts set back to it. */
export interface Later {
  ids: string[];
  at: number;
  retryCount?: number;
}

/** What the deliverer owes Redis since its last round trip. */
export interface Owed {
  ack: string[];
  nack: Later[];
  dead: Letter[];
  /** Webhook requests made since: the attempt log's new records, oldest first. */
  records: AttemptRecord[];
  /** What those requests met, for the window (lua/take.ts). */
  signals: Signals;
}

export interface Tally {
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
}

/** What happened to the subscription's requests, written once by the run's report. */
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

/** Why a run stops taking: its endpoint failed (nothing new before `at`), or is gone (paused). */
export type Stop = { kind: "backoff"; at: number } | { kind: "gone" };

export interface Progress {
  tally: Tally;
  state: StateChange;
  stop: Stop | null;
}

export interface Run {
  owed: Owed;
  progress: Progress;
}

export const nothingOwed = (): Owed => ({
  ack: [],
  nack: [],
  dead: [],
  records: [],
  signals: { succeeded: 0, congestedAt: 0 },
});

/** What is owed in all, `a` before `b`. */
export const owedBoth = (a: Owed, b: Owed): Owed => ({
  ack: [...a.ack, ...b.ack],
  nack: [...a.nack, ...b.nack],
  dead: [...a.dead, ...b.dead],
  records: [...a.records, ...b.records],
  signals: {
    succeeded: a.signals.succeeded + b.signals.succeeded,
    congestedAt: Math.max(a.signals.congestedAt, b.signals.congestedAt),
  },
});

export const startRun = (): Run => ({
  owed: nothingOwed(),
  progress: {
    tally: { delivered: 0, retried: 0, deadLettered: 0, filtered: 0 },
    state: { success: null, failuresSince: 0, error: null, counts: noCounts() },
    stop: null,
  },
});

/** One request's end: its batch, what its answer meant, and its attempt (record and counts). */
export interface Sent {
  batch: Taken[];
  outcome: Outcome;
  attempt: Attempt;
  /** When its answer came, or it failed: retries count from then. */
  at: number;
}

/** The run after one request. `kind` decides whether lastAckedId is tracked. */
export function settle(run: Run, sent: Sent, kind: UnitKind): Run {
  const { batch, outcome, at } = sent;
  let { owed, progress } = run;
  owed = {
    ...owed,
    records: [...owed.records, sent.attempt.record],
    signals: signalsAfter(owed.signals, outcome, sent.attempt.record.at),
  };
  let state = { ...progress.state, counts: countAttempts(progress.state.counts, [sent.attempt]) };
  const tally = { ...progress.tally };
  let stop = progress.stop;
  const failing = outcome.kind === "partial" || outcome.kind === "failed";
  const notAcked = new Set<string>();
  if (failing) {
    for (const r of outcome.retries) {
      owed = { ...owed, nack: [...owed.nack, { ids: ids(r.entries), at: r.at }] };
      for (const e of r.entries) notAcked.add(e.entryId);
      tally.retried += r.entries.length;
    }
    const letters = outcome.dead.map((e) => ({
      id: e.entryId,
      attempts: e.attempt,
      error: outcome.reason,
    }));
    for (const e of outcome.dead) notAcked.add(e.entryId);
    owed = { ...owed, dead: [...owed.dead, ...letters] };
    tally.deadLettered += letters.length;
    state = { ...state, error: { at, error: outcome.reason } };
  }
  if (outcome.kind === "delivered" || outcome.kind === "partial") {
    const accepted = batch.filter((e) => !notAcked.has(e.entryId));
    owed = { ...owed, ack: [...owed.ack, ...ids(accepted)] };
    tally.delivered += accepted.length;
    // The last id acked on the channel stream is where a lost group is recreated (keys.ts); a
    // redrive stream's ids say nothing about the channel, so they are never recorded.
    const last = kind === "main" ? (accepted.at(-1)?.entryId ?? null) : null;
    const lastAckedId = last ?? state.success?.lastAckedId ?? null;
    state = { ...state, success: { at, lastAckedId }, failuresSince: 0 };
  }
  if (outcome.kind === "failed") {
    state = { ...state, failuresSince: state.failuresSince + 1 };
    // Retry times only move later: of two backoffs, the later holds.
    if (outcome.backoff && outcome.retries.length > 0 && stop?.kind !== "gone") {
      stop = { kind: "backoff", at: Math.max(outcome.retryAt, stop?.at ?? 0) };
    }
  }
  if (outcome.kind === "gone") {
    // Nothing acked or lost: visible again at once, its attempt counted, for when it resumes.
    owed = { ...owed, nack: [...owed.nack, { ids: ids(batch), at }] };
    state = {
      ...state,
      failuresSince: state.failuresSince + 1,
      error: { at, error: `${outcome.reason}; subscription paused` },
    };
    stop = { kind: "gone" };
  }
  return { owed, progress: { tally, state, stop } };
}

/** What moves the window after a request sent at `sentAt` (judge.ts: congestion). */
function signalsAfter(signals: Signals, outcome: Outcome, sentAt: number): Signals {
  if (outcome.kind === "delivered" || outcome.kind === "partial") {
    return { ...signals, succeeded: signals.succeeded + 1 };
  }
  if (outcome.kind === "failed" && outcome.congestion) {
    return { ...signals, congestedAt: Math.max(signals.congestedAt, sentAt) };
  }
  return signals;
}

/**
 * The run after giving back batches it took but will not send: visible again at `at` (now, or
 * when a backoff ends), their attempt set back to what it was before this take.
 */
export function giveBack(run: Run, entries: Taken[], at: number): Run {
  if (entries.length === 0) return run;
  const byCount = new Map<number, string[]>();
  for (const e of entries)
    byCount.set(e.attempt - 1, [...(byCount.get(e.attempt - 1) ?? []), e.entryId]);
  const later = [...byCount].map(([retryCount, list]) => ({ ids: list, at, retryCount }));
  return { ...run, owed: { ...run.owed, nack: [...run.owed.nack, ...later] } };
}

/** The run after a take's types filter acked `n` entries without a request. */
export const filtered = (run: Run, n: number): Run => ({
  ...run,
  progress: {
    ...run.progress,
    tally: { ...run.progress.tally, filtered: run.progress.tally.filtered + n },
  },
});

/**
 * The run after dead letters Redis refused to store: retried at `at` instead, the refusal its
 * last error, made at `now`.
 */
export function refusedDeadLetters(
  run: Run,
  refused: Letter[],
  at: number,
  reason: string,
  now: number,
): Run {
  if (refused.length === 0) return run;
  const error = `${refused.length} message(s) could not be dead-lettered: ${reason}`;
  return {
    owed: { ...run.owed, nack: [...run.owed.nack, { ids: refused.map((l) => l.id), at }] },
    progress: {
      ...run.progress,
      tally: {
        ...run.progress.tally,
        deadLettered: run.progress.tally.deadLettered - refused.length,
      },
      state: { ...run.progress.state, error: { at: now, error } },
    },
  };
}

const ids = (entries: Taken[]) => entries.map((e) => e.entryId);

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
