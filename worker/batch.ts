// One batch: send it (filtering by type first), judge the answer per message, and say how the
// unit goes on. Writes nothing to Redis but when the unit must stop (stopUnit), so the caller can
// write each batch's acks together with its next read.

import type { Config } from "../shared/config.ts";
import type { Unit } from "../shared/keys.ts";
import type { Db } from "../shared/redis.ts";
import { backOff, pauseGone } from "../shared/schedule.ts";
import { emptySettlement, type Settlement, settle } from "../shared/settlement.ts";
import { matchesTypes, type Subscription } from "../shared/subscription.ts";
import { resetUnsent, type UnitEntry } from "../shared/units.ts";
import type { Budget } from "./budget.ts";
import { deliver, type Endpoint } from "./deliver.ts";
import { type Judgement, judge } from "./outcome.ts";

export interface UnitContext {
  db: Db;
  config: Config;
  budget: Budget;
  sub: Subscription;
  endpoint: Endpoint;
  /** Whether the lease may be released by this unit's close (it is the visit's last unit). */
  releaseOnClose: boolean;
}

/** What a visit of a unit did; `pending` tracks the unit's pending list as it goes. */
export interface Progress {
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
  pending: number;
  /** The endpoint failed as a whole or is gone: do not call it again in this visit. */
  stop: boolean;
  /** The close script released the lease. */
  released: boolean;
}

export interface BatchResult {
  settlement: Settlement;
  /** ok: go on; backoff: the request failed, wait until retryAt; gone: 410, pause. */
  end: "ok" | "backoff" | "gone";
  retryAt: number | null;
  error: string | null;
}

export async function sendBatch(
  ctx: UnitContext,
  entries: UnitEntry[],
  p: Progress,
): Promise<BatchResult> {
  const settlement = emptySettlement();
  const matching: UnitEntry[] = [];
  for (const entry of entries) {
    if (matchesTypes(ctx.sub.types, entry.message.type)) matching.push(entry);
    else settlement.ack.push(entry.entryId);
  }
  p.filtered += settlement.ack.length;
  p.pending -= settlement.ack.length;
  if (matching.length === 0) return { settlement, end: "ok", retryAt: null, error: null };

  const now = Date.now();
  const result = await deliver(ctx.endpoint, matching, now);
  ctx.budget.spend();
  const j = judge(result, matching, {
    now,
    maxAttempts: ctx.sub.maxAttempts,
    jitterKey: ctx.sub.name,
    policy: ctx.config,
  });
  record(settlement, j, now, p);
  const end = j.gone ? "gone" : j.endpointFailed && j.retryAt !== null ? "backoff" : "ok";
  return { settlement, end, retryAt: j.retryAt, error: j.error };
}

function record(settlement: Settlement, j: Judgement, now: number, p: Progress): void {
  const acked = [...j.delivered, ...j.dead.map((d) => d.entry)];
  settlement.ack.push(...acked.map((e) => e.entryId));
  settlement.dead.push(...j.dead);
  if (j.retryAt !== null && !j.endpointFailed) settlement.retryAt = j.retryAt;
  settlement.state = {
    success: j.endpointFailed
      ? null
      : { at: now, lastAckedId: j.delivered.at(-1)?.entryId ?? null },
    failuresSince: j.endpointFailed ? 1 : 0,
    error: j.error === null ? null : { at: now, error: j.error },
  };
  p.delivered += j.delivered.length;
  p.retried += j.retry.length;
  p.deadLettered += j.dead.length;
  p.pending -= acked.length;
}

/**
 * The endpoint failed as a whole (or is gone): write what is settled, hand back entries read
 * ahead but never sent (their delivery count goes back to 0, so no attempt is lost), then back
 * the unit off until the retry time, or pause the subscription.
 */
export async function stopUnit(
  ctx: UnitContext,
  unit: Unit,
  settlement: Settlement,
  result: BatchResult,
  unsent: UnitEntry[],
): Promise<void> {
  await settle(ctx.db, unit, settlement);
  if (unsent.length > 0)
    await resetUnsent(
      ctx.db,
      unit,
      unsent.map((e) => e.entryId),
    );
  if (result.end === "gone") {
    await pauseGone(ctx.db, unit.channel, unit.subscription);
  } else if (result.retryAt !== null) {
    await backOff(ctx.db, unit, result.retryAt);
  }
  ctx.budget.spend(3);
}
