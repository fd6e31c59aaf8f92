// Retrying the messages a unit's endpoint failed: they wait in the group's pending list, and
// one is due when its idle time (since its last send) reaches the backoff for its delivery count
// (retry.ts). Due ones are claimed a batch at a time (XCLAIM counts the attempt) and sent again.

import type { Unit } from "../shared/keys.ts";
import { setRetry } from "../shared/schedule.ts";
import { settle } from "../shared/settlement.ts";
import { claim, pendingEntries } from "../shared/units.ts";
import { type Progress, sendBatch, stopUnit, type UnitContext } from "./batch.ts";
import { retryDelayMs } from "./retry.ts";

export async function retryPending(ctx: UnitContext, unit: Unit, p: Progress): Promise<void> {
  const { db, sub, config, budget } = ctx;
  const pending = await pendingEntries(db, unit);
  budget.spend();
  const now = Date.now();
  const dueAt = (e: { idleMs: number; deliveries: number }) =>
    now - e.idleMs + retryDelayMs(e.deliveries, sub.name, config);
  const due = pending.filter((e) => dueAt(e) <= now);
  let nextRetry = Math.min(...pending.filter((e) => dueAt(e) > now).map(dueAt));
  p.pending = pending.length;

  for (let i = 0; i < due.length; i += sub.batchSize) {
    if (!budget.allowsBatch()) {
      nextRetry = now;
      break;
    }
    const slice = due.slice(i, i + sub.batchSize);
    const claimed = await claim(db, unit, slice);
    budget.spend();
    p.pending -= slice.length - claimed.length;
    const result = await sendBatch(ctx, claimed, p);
    if (result.end !== "ok") {
      await stopUnit(ctx, unit, result.settlement, result, []);
      p.stop = true;
      return;
    }
    await settle(db, unit, result.settlement);
    budget.spend();
    if (result.retryAt !== null) nextRetry = Math.min(nextRetry, result.retryAt);
  }
  const next = Number.isFinite(nextRetry) ? nextRetry : now;
  await setRetry(db, unit, p.pending > 0 ? next : null);
}
