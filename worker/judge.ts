// judge: what an endpoint's answer to one request means for its messages, pure. The one result
// type of a request (Outcome); settle.ts folds it into what the deliverer owes Redis.
//
//   delivered   2xx, nothing listed in {"failed": [...]}: every message acked
//   partial     2xx listing some in "failed": the rest acked, those retried later (or dead, out
//               of attempts) while the stream flows on
//   failed      non-2xx, timeout, network error, unreadable reply: nothing accepted; each
//               message retried at its time (or dead), and the subscription backs off: nothing
//               new is sent before `retryAt`; except after a 429 or 503 without Retry-After
//               while its window of requests in flight can still shrink: that is congestion,
//               answered by the smaller window alone (the rest go on)
//
// Congestion (429, 503, a timeout, a connection error) halves the window (lua/take.ts); any
// other failure (500, a 4xx but 429) is the endpoint's own trouble, not too many requests, and
// leaves it as it is.
//   gone        410: the subscription is paused, nothing acked or lost
//
// When a retry is due is decided here, and only here (retry.ts: the backoff, or Retry-After when
// it asks for longer).

import type { Taken } from "../shared/engine/take.ts";
import type { Answer } from "./deliver.ts";
import { nextAttemptAt, type RetryPolicy } from "./retry.ts";

/** Messages retried at `at` (those of one attempt count share it). */
export interface Retry {
  at: number;
  entries: Taken[];
}

export type Outcome =
  | { kind: "delivered" }
  | { kind: "partial"; retries: Retry[]; dead: Taken[]; reason: string }
  | {
      kind: "failed";
      retries: Retry[];
      dead: Taken[];
      retryAt: number;
      reason: string;
      /** It says the endpoint had too many requests: the window is halved. */
      congestion: boolean;
      /** The subscription backs off until retryAt (see the header). */
      backoff: boolean;
    }
  | { kind: "gone"; reason: string };

export interface JudgeOptions {
  /** When the request was made (ms). */
  now: number;
  maxAttempts: number;
  /** The subscription's name: the retry jitter's key. */
  jitterKey: string;
  policy: RetryPolicy;
  /** The subscription's window of requests in flight, as the run last read it. */
  window: number;
}

export const REJECTED_REASON = "rejected by the endpoint (listed in failed)";

/** A failure's reason with the first 1 KiB of the answer's body, when it had one: lastError's
 * text and a dead letter's last error (the attempt log keeps the two apart). */
export const withResponse = (reason: string, body: string) =>
  body === "" ? reason : `${reason}; response: ${body}`;

/** The outcome of one request that carried `batch`. */
export function judge(answer: Answer, batch: Taken[], o: JudgeOptions): Outcome {
  if (!answer.ok && answer.status === 410) {
    return {
      kind: "gone",
      reason: withResponse(`${answer.reason}: the endpoint is gone`, answer.body),
    };
  }
  const failing = answer.ok ? batch.filter((e) => answer.failedIds.has(e.messageId)) : batch;
  if (failing.length === 0) return { kind: "delivered" };
  const retryAfterMs = answer.ok ? null : answer.retryAfterMs;
  const due = (e: Taken) => nextAttemptAt(o.now, e.attempt, o.jitterKey, o.policy, retryAfterMs);
  const dead = failing.filter((e) => e.attempt >= o.maxAttempts);
  const retries = byTime(
    failing.filter((e) => e.attempt < o.maxAttempts),
    due,
  );
  if (answer.ok) return { kind: "partial", retries, dead, reason: REJECTED_REASON };
  // The whole endpoint failed: nothing new goes out before the first retry (or, all dead, before
  // the time the batch's first message would have waited).
  const retryAt = retries[0]?.at ?? due(batch[0]!);
  const refused = answer.status === 429 || answer.status === 503;
  return {
    kind: "failed",
    retries,
    dead,
    retryAt,
    reason: withResponse(answer.reason, answer.body),
    congestion: refused || answer.answer === "timeout" || answer.answer === "network",
    // Below 2, one request at a time: nothing left to shrink, the endpoint refuses even one.
    backoff: !refused || retryAfterMs !== null || o.window < 2,
  };
}

/** Entries grouped by their retry time, earliest first. */
function byTime(entries: Taken[], due: (e: Taken) => number): Retry[] {
  const groups = new Map<number, Taken[]>();
  for (const e of entries) {
    const at = due(e);
    groups.set(at, [...(groups.get(at) ?? []), e]);
  }
  return [...groups].sort(([a], [b]) => a - b).map(([at, list]) => ({ at, entries: list }));
}

/**
 * Whether an outcome stops the deliverer: the endpoint failed with messages to retry (and the
 * subscription backs off), or is gone.
 */
export const stops = (o: Outcome) =>
  o.kind === "gone" || (o.kind === "failed" && o.backoff && o.retries.length > 0);

/**
 * The log line for a request not wholly accepted, else null. One per such request, written as it
 * happens: `npm run dev` shows it in its terminal (wrangler prints the Worker's logs), and a
 * deployed Worker's logs keep it. A failing endpoint backs off, so these come at the pace of its
 * retries. Never the URL: it may carry a token.
 */
export function failureLine(
  endpoint: { channel: string; subscription: string },
  outcome: Outcome,
  batch: Taken[],
  at: number,
): string | null {
  if (outcome.kind === "delivered") return null;
  const head = `webhook failed: ${endpoint.channel}/${endpoint.subscription}`;
  if (outcome.kind === "gone") {
    return `${head}: ${outcome.reason}; the subscription is paused (${count(batch.length)} kept)`;
  }
  const failing = [...outcome.retries.flatMap((r) => r.entries), ...outcome.dead];
  const attempt = Math.max(...failing.map((e) => e.attempt));
  const then: string[] = [];
  const first = outcome.retries[0];
  if (first) then.push(`retry in ${((first.at - at) / 1000).toFixed(1)} s`);
  if (outcome.dead.length > 0)
    then.push(`${count(outcome.dead.length)} out of attempts, to the dead letters`);
  return `${head}: ${outcome.reason}, ${count(failing.length)}, attempt ${attempt}; ${then.join("; ")}`;
}

const count = (n: number) => `${n} message${n === 1 ? "" : "s"}`;
