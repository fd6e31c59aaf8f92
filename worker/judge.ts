// judge: what one attempt means for each message of its batch, pure. The batch's outcomes are
// the one result type of the send step; settle.ts folds them into writes.
//
//   filtered    no request: the type matched none of the subscription's patterns (acked)
//   delivered   2xx, and not listed in {"failed": [...]} (acked)
//   rejected    2xx but listed in "failed": retried later while the stream flows on, or dead
//   failed      non-2xx, timeout, network error, unreadable reply: nothing accepted; the unit
//               backs off until `retryAt` and reads nothing new meanwhile (dead: out of attempts)
//   gone        410: the subscription is paused, nothing acked or lost

import type { AttemptResult } from "./deliver.ts";
import type { UnitEntry } from "./entries.ts";
import { nextAttemptAt, type RetryPolicy } from "./retry.ts";

export type Outcome =
  | { kind: "filtered"; entries: UnitEntry[] }
  | { kind: "delivered"; entries: UnitEntry[]; at: number }
  | {
      kind: "rejected";
      retry: UnitEntry[];
      dead: UnitEntry[];
      /** When the earliest retried one is due; null when all are dead. */
      retryAt: number | null;
      reason: string;
      at: number;
    }
  | {
      kind: "failed";
      retry: UnitEntry[];
      dead: UnitEntry[];
      /** Nothing new is read from the unit, and nothing retried, before this. */
      retryAt: number;
      reason: string;
      at: number;
    }
  | { kind: "gone"; entries: UnitEntry[]; reason: string; at: number };

export interface JudgeOptions {
  /** When the attempt was made (ms). */
  now: number;
  maxAttempts: number;
  /** The subscription's name: the retry jitter's key. */
  jitterKey: string;
  policy: RetryPolicy;
}

export const REJECTED_REASON = "rejected by the endpoint (listed in failed)";

/** A failure's reason with the first 1 KiB of the answer's body, when it had one: lastError's
 * text and a dead letter's last error (the attempt log keeps the two apart). */
export const withResponse = (reason: string, body: string) =>
  body === "" ? reason : `${reason}; response: ${body}`;

/** The outcomes of one attempt at `entries` (those the type filter let through). */
export function judge(result: AttemptResult, entries: UnitEntry[], o: JudgeOptions): Outcome[] {
  if (!result.ok && result.status === 410) {
    const reason = withResponse(`${result.reason}: the endpoint is gone`, result.body);
    return [{ kind: "gone", entries, reason, at: o.now }];
  }
  const failing = result.ok ? entries.filter((e) => result.failedIds.has(e.message.id)) : entries;
  const retry = failing.filter((e) => e.attempt < o.maxAttempts);
  const dead = failing.filter((e) => e.attempt >= o.maxAttempts);
  const retryAfterMs = result.ok ? null : result.retryAfterMs;
  const due = (e: UnitEntry) =>
    nextAttemptAt(o.now, e.attempt, o.jitterKey, o.policy, retryAfterMs);
  const earliest = (list: UnitEntry[]) => (list.length === 0 ? null : Math.min(...list.map(due)));

  if (!result.ok) {
    // The whole endpoint failed: wait as long as its first message's next attempt asks for (all
    // of a batch share their attempt count, so their delay too).
    const retryAt = earliest(retry) ?? due(entries[0]!);
    const reason = withResponse(result.reason, result.body);
    return [{ kind: "failed", retry, dead, retryAt, reason, at: o.now }];
  }
  const outcomes: Outcome[] = [];
  const delivered = entries.filter((e) => !result.failedIds.has(e.message.id));
  if (delivered.length > 0) outcomes.push({ kind: "delivered", entries: delivered, at: o.now });
  if (failing.length > 0) {
    const retryAt = earliest(retry);
    outcomes.push({ kind: "rejected", retry, dead, retryAt, reason: REJECTED_REASON, at: o.now });
  }
  return outcomes;
}
