// send: POST batches in order and judge each answer, stopping at the first that ends the unit.
// Writes nothing to Redis: it returns the outcomes, which settle.ts folds into writes.

import type { Config } from "../shared/config.ts";
import { matchesTypes, type Subscription } from "../shared/subscription.ts";
import { type Attempt, attemptOf } from "./attempts.ts";
import type { Budget } from "./budget.ts";
import { deliver, type Endpoint } from "./deliver.ts";
import type { UnitEntry } from "./entries.ts";
import { judge, type Outcome } from "./judge.ts";
import type { Lease } from "./lease.ts";
import { type Pacer, paceKey } from "./pace.ts";
import { stops } from "./settle.ts";

export interface SendContext {
  config: Config;
  sub: Subscription;
  endpoint: Endpoint;
  budget: Budget;
  lease: Lease;
  clock: () => number;
  /** Waits this many ms: a paced subscription's POSTs wait for their slot (pace.ts). */
  sleep: (ms: number) => Promise<void>;
  pace: Pacer;
}

export interface Sent {
  outcomes: Outcome[];
  /** One per POST made, in order: the attempt log's records and the counters' deltas. */
  attempts: Attempt[];
  /** Why sending stopped early: an outcome that ends the unit, or no budget or lease left. */
  stopped: Outcome | "budget" | null;
  /** Entries of the batches not sent because of the stop. */
  unsent: UnitEntry[];
}

/**
 * May a batch start now: within the pass's budget, and surely within the lease (renewed if it
 * would not last)? Renewing spends a subrequest.
 */
export async function canStartBatch(ctx: SendContext, now: number): Promise<boolean> {
  if (!ctx.budget.allowsBatch(now)) return false;
  if (ctx.lease.covers(now, ctx.sub.timeoutMs)) return true;
  ctx.budget.spend();
  return ctx.lease.hold(now, ctx.sub.timeoutMs);
}

/**
 * Waits for the subscription's next slot under maxRequestsPerSecond (pace.ts), then asks
 * canStartBatch at that time: the wait counts against the budget. Returns when the POST may
 * start, or null when it may not (a slot past the deadline is not waited for at all).
 */
async function waitForSlot(ctx: SendContext): Promise<number | null> {
  const rps = ctx.sub.maxRequestsPerSecond;
  let now = ctx.clock();
  const at = ctx.pace.nextStart(paceKey(ctx.sub), rps, now);
  if (at > now && !ctx.budget.allowsBatch(at)) return null;
  // A timer may fire a millisecond early: wait again rather than start before the slot.
  while (now < at) {
    await ctx.sleep(Math.ceil(at - now));
    now = ctx.clock();
  }
  return (await canStartBatch(ctx, now)) ? now : null;
}

/** POSTs the batches in order; entries matching none of the type patterns get no request. */
export async function sendAll(ctx: SendContext, batches: UnitEntry[][]): Promise<Sent> {
  const outcomes: Outcome[] = [];
  const attempts: Attempt[] = [];
  for (const [i, batch] of batches.entries()) {
    const matching = batch.filter((e) => matchesTypes(ctx.sub.types, e.message.type));
    const filtered = batch.filter((e) => !matching.includes(e));
    const now = matching.length > 0 ? await waitForSlot(ctx) : ctx.clock();
    if (now === null) {
      return { outcomes, attempts, stopped: "budget", unsent: batches.slice(i).flat() };
    }
    if (filtered.length > 0) outcomes.push({ kind: "filtered", entries: filtered });
    if (matching.length === 0) continue;
    ctx.pace.started(paceKey(ctx.sub), ctx.sub.maxRequestsPerSecond, now);
    const result = await deliver(ctx.endpoint, matching, now);
    ctx.budget.spend();
    attempts.push(attemptOf(matching, result, now, Math.max(0, ctx.clock() - now)));
    const judged = judge(result, matching, {
      now,
      maxAttempts: ctx.sub.maxAttempts,
      jitterKey: ctx.sub.name,
      policy: ctx.config,
    });
    outcomes.push(...judged);
    for (const outcome of judged) {
      const line = failureLine(ctx.endpoint, outcome);
      if (line) console.warn(line);
    }
    const stop = judged.find(stops);
    if (stop) return { outcomes, attempts, stopped: stop, unsent: batches.slice(i + 1).flat() };
  }
  return { outcomes, attempts, stopped: null, unsent: [] };
}

/**
 * The log line for an outcome that is a failure, else null. One per webhook request not wholly
 * accepted, written as it happens: `npm run dev` shows it in its terminal (wrangler prints the
 * Worker's logs), and a deployed Worker's logs keep it. A failing endpoint backs off, so these
 * come at the pace of its retries. Never the URL: it may carry a token.
 */
export function failureLine(
  endpoint: Pick<Endpoint, "channel" | "subscription">,
  outcome: Outcome,
): string | null {
  if (outcome.kind === "filtered" || outcome.kind === "delivered") return null;
  const head = `webhook failed: ${endpoint.channel}/${endpoint.subscription}`;
  if (outcome.kind === "gone") {
    return `${head}: ${outcome.reason}; the subscription is paused (${count(outcome.entries.length)} kept)`;
  }
  const failing = [...outcome.retry, ...outcome.dead];
  const attempt = Math.max(...failing.map((e) => e.attempt));
  const then: string[] = [];
  if (outcome.retry.length > 0 && outcome.retryAt !== null) {
    then.push(`retry in ${((outcome.retryAt - outcome.at) / 1000).toFixed(1)} s`);
  }
  if (outcome.dead.length > 0) {
    then.push(`${count(outcome.dead.length)} out of attempts, to the dead letters`);
  }
  return `${head}: ${outcome.reason}, ${count(failing.length)}, attempt ${attempt}; ${then.join("; ")}`;
}

const count = (n: number) => `${n} message${n === 1 ? "" : "s"}`;
