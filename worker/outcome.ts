// What an attempt means for each message of the batch, pure: delivered (ack), retry later (stays
// pending), or dead (dead-letter stream + ack) once it used its last attempt. And whether the
// endpoint failed as a whole, in which case the unit backs off and reads nothing new meanwhile.

import type { DeadLetterRecord } from "../shared/settlement.ts";
import type { UnitEntry } from "../shared/units.ts";
import type { AttemptResult } from "./deliver.ts";
import { nextAttemptAt, type RetryPolicy } from "./retry.ts";

export interface Judgement {
  delivered: UnitEntry[];
  retry: UnitEntry[];
  dead: DeadLetterRecord[];
  /** When the earliest message kept for retry is due again; null when none is kept. */
  retryAt: number | null;
  /** The request failed (nothing accepted): the unit waits until retryAt. */
  endpointFailed: boolean;
  /** 410 Gone: the subscription is paused, nothing is acked. */
  gone: boolean;
  /** Why the attempt failed, for the subscription's lastError; null when it succeeded. */
  error: string | null;
}

export interface JudgeOptions {
  now: number;
  maxAttempts: number;
  /** The subscription's name: the retry jitter's key. */
  jitterKey: string;
  policy: RetryPolicy;
}

export function judge(result: AttemptResult, entries: UnitEntry[], o: JudgeOptions): Judgement {
  const judgement: Judgement = {
    delivered: [],
    retry: [],
    dead: [],
    retryAt: null,
    endpointFailed: !result.ok,
    gone: !result.ok && result.gone,
    error: null,
  };
  if (judgement.gone) {
    judgement.error = `${result.ok ? "" : result.reason}: the endpoint is gone; subscription paused`;
    return judgement;
  }
  const failedReason = result.ok ? "rejected by the endpoint (listed in failed)" : result.reason;
  const retryAfterMs = result.ok ? null : result.retryAfterMs;
  for (const entry of entries) {
    const failed = !result.ok || result.failedIds.has(entry.message.id);
    if (!failed) {
      judgement.delivered.push(entry);
    } else if (entry.attempt >= o.maxAttempts) {
      judgement.dead.push({ entry, error: failedReason });
    } else {
      judgement.retry.push(entry);
      const at = nextAttemptAt(o.now, entry.attempt, o.jitterKey, o.policy, retryAfterMs);
      judgement.retryAt = Math.min(judgement.retryAt ?? at, at);
    }
  }
  if (!result.ok || judgement.retry.length + judgement.dead.length > 0) {
    judgement.error = failedReason;
  }
  return judgement;
}
