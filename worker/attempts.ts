// What one webhook request leaves behind: its attempt log record (shared/attempt-log.ts) and its
// share of the delivery counters (shared/counters.ts). Pure: drive.ts makes an Attempt per POST,
// settle.ts folds them into what the run owes, its next round trip writes the records and its
// report the counts (report.ts).

import type { AttemptRecord } from "../shared/attempt-log.ts";
import {
  attemptsCounter,
  bucketOf,
  LATENCY_SUM_COUNTER,
  latencyCounter,
  type Result,
  resultOf,
} from "../shared/counters.ts";
import type { Taken } from "../shared/engine/take.ts";
import { idTime } from "../shared/streams.ts";
import type { TraceContext } from "../shared/trace.ts";
import type { Answer } from "./deliver.ts";

/** One webhook request: its record, and the publish-to-2xx time of each message it delivered. */
export interface Attempt {
  record: AttemptRecord;
  result: Result;
  latenciesMs: number[];
}

/**
 * The attempt of POSTing `entries` at `at` in `trace` (the request's traceparent, when it is
 * known), answered (or not) `durationMs` later; for an `ordered` subscription, with the keys its
 * failed messages hold back.
 */
export function attemptOf(
  entries: Taken[],
  result: Answer,
  at: number,
  durationMs: number,
  trace?: TraceContext,
  ordered = false,
): Attempt {
  const doneAt = at + durationMs;
  const delivered = result.ok ? entries.filter((e) => !result.failedIds.has(e.messageId)) : [];
  const failed = result.ok ? entries.filter((e) => result.failedIds.has(e.messageId)) : entries;
  return {
    record: {
      at,
      attempt: Math.max(...entries.map((e) => e.attempt)),
      messages: entries.length,
      firstId: entries[0]!.messageId,
      lastId: entries.at(-1)!.messageId,
      status: result.answer,
      durationMs,
      error: result.ok ? null : result.reason,
      body: result.body,
      traceparent: trace?.traceparent ?? null,
      held: ordered
        ? failed.map((e) => ({ orderingKey: e.orderingKey, messageId: e.messageId }))
        : [],
    },
    result: resultOf(result.answer, result.ok),
    // The message id is the publish time (a redrive entry carries the original's id).
    latenciesMs: delivered.map((e) => doneAt - idTime(e.messageId)),
  };
}

/** Counter deltas not written yet: requests by result, delivered messages by latency bucket. */
export interface Counts {
  attempts: Partial<Record<Result, number>>;
  /** Bucket index (counters.ts LATENCY_LE) -> messages. */
  latency: Record<number, number>;
  latencyMs: number;
}

export const noCounts = (): Counts => ({ attempts: {}, latency: {}, latencyMs: 0 });

/** The counts after these attempts. */
export function countAttempts(c: Counts, attempts: Attempt[]): Counts {
  const out: Counts = {
    attempts: { ...c.attempts },
    latency: { ...c.latency },
    latencyMs: c.latencyMs,
  };
  for (const a of attempts) {
    out.attempts[a.result] = (out.attempts[a.result] ?? 0) + 1;
    for (const ms of a.latenciesMs) {
      const bucket = bucketOf(ms);
      out.latency[bucket] = (out.latency[bucket] ?? 0) + 1;
      out.latencyMs += Math.max(0, Math.round(ms));
    }
  }
  return out;
}

/** The HINCRBYs of some counts, as (field, delta) pairs: only the counters that moved. */
export function counterIncrements(c: Counts, field: (counter: string) => string): string[] {
  const out: string[] = [];
  for (const [result, n] of Object.entries(c.attempts) as [Result, number][]) {
    out.push(field(attemptsCounter(result)), String(n));
  }
  for (const [bucket, n] of Object.entries(c.latency)) {
    out.push(field(latencyCounter(Number(bucket))), String(n));
  }
  if (c.latencyMs > 0) out.push(field(LATENCY_SUM_COUNTER), String(c.latencyMs));
  return out;
}
