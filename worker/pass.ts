// A delivery pass: find what is due, load it, visit each subscription.
//
//   dueSubscriptions  one ZRANGE over the schedule, earliest first: the whole cost of an idle
//                     pass, however many subscriptions exist
//   load              the subscriptions' settings (HMGET per channel) and schedules (one ZMSCORE)
//   visit             up to PASS_CONCURRENCY subscriptions at once, in the order they came due,
//                     each by deliverer runs of its own (visit.ts, drive.ts)
//
// Every due unit is served in turn: a unit the budget stops moves to the back of the schedule
// (its wake member to now), and the ones the pass did not reach keep their earlier time, so the
// next pass starts with them. The budget is the invocation's meter (shared/meter.ts): its
// subrequests and its deadline.
//
// With a queue (dispatch.ts), the cron's pass only dispatches: one task per due subscription,
// and the queue's consumers (consumer.ts) visit them, as many at once as the queue runs. A
// publish's kick visits the first PASS_CONCURRENCY subscribers it woke at once (waitUntil) and
// hands the rest to the queue. POST /v1/deliver always visits, and answers with what it did.

import type { PassSummary, SubscriptionSummary } from "../shared/delivery.ts";
import { unitName } from "../shared/keys.ts";
import type { WokenSubscriber } from "../shared/streams.ts";
import { parseSubscription } from "../shared/subscription.ts";
import { readBytesFor } from "./batches.ts";
import type { Invocation } from "./deliverer.ts";
import { type Dispatch, taskFor } from "./dispatch.ts";
import { dueUnits, type Loaded, load, type UnitSchedule } from "./schedule.ts";
import { type Visited, visit } from "./visit.ts";

export interface Worker extends Invocation {
  dispatch: Dispatch;
}

/** The subscriptions due now, earliest first, at most `limit` (1 ZRANGE). */
async function dueSubscriptions(w: Worker, now: number, limit: number) {
  const due = await dueUnits(w.db, now, limit * 4);
  const wanted = new Map<string, { channel: string; name: string }>();
  for (const { unit } of due) {
    if (wanted.size >= limit) break;
    wanted.set(`${unit.channel}/${unit.subscription}`, {
      channel: unit.channel,
      name: unit.subscription,
    });
  }
  return [...wanted.values()];
}

/** One pass that visits what is due (the cron's without a queue; POST /v1/deliver's always). */
export async function runPass(w: Worker): Promise<PassSummary> {
  const startedAt = w.clock();
  const wanted = await dueSubscriptions(w, startedAt, w.config.passMaxSubscriptions);
  if (wanted.length === 0) return summarize(startedAt, w.clock(), []);
  return deliverAll(w, startedAt, await load(w.db, wanted));
}

// How many subscriptions one cron run hands to the queue (100 tasks per sendBatch): far more than
// a pass visits, since the queue's consumers do the visiting.
const DISPATCH_MAX = 10_000;

/**
 * The cron's job: with a queue, a task for every due subscription (nothing when nothing is due:
 * one ZRANGE); without one, a pass.
 */
export async function cron(w: Worker): Promise<PassSummary | { dispatched: number }> {
  if (!w.dispatch.queued) return runPass(w);
  const now = w.clock();
  const cap = Math.min(DISPATCH_MAX, Math.max(1, w.db.meter.left - 2) * 100);
  const wanted = await dueSubscriptions(w, now, cap);
  if (wanted.length === 0) return { dispatched: 0 };
  const tasks = wanted.map((s) => ({ task: taskFor(s, "fanout") }));
  if (!(await w.dispatch.send(tasks, now))) return runPass(w);
  return { dispatched: tasks.length };
}

/**
 * Delivers to the subscribers a publish woke; their settings came back with the publish. With a
 * queue, those past the first PASS_CONCURRENCY go to it instead of waiting here in line.
 */
export async function kick(
  w: Worker,
  channel: string,
  woken: WokenSubscriber[],
): Promise<PassSummary> {
  const now = w.clock();
  const inline = w.dispatch.queued ? woken.slice(0, w.config.passConcurrency) : woken;
  const rest = woken.slice(inline.length);
  if (rest.length > 0) {
    const tasks = rest.map((s) => ({ task: taskFor({ channel, name: s.name }, "fanout") }));
    // Refused: the cron finds them due (the publish woke them) within a minute.
    await w.dispatch.send(tasks, now);
  }
  const subs = inline.map((s) => {
    const sub = parseSubscription(channel, s.name, s.json, false);
    const main = unitName({ channel, subscription: s.name, kind: "main" });
    const schedules = new Map<string, UnitSchedule>([[main, { wake: now, retry: s.retryAt }]]);
    return { sub, schedules };
  });
  return deliverAll(w, now, subs);
}

/** Delivers to one subscription now (after a replay, a redrive, a resume). */
export async function wake(w: Worker, channel: string, name: string) {
  const startedAt = w.clock();
  return deliverAll(w, startedAt, await load(w.db, [{ channel, name }]));
}

/**
 * Visits the subscriptions, `concurrency` at a time (PASS_CONCURRENCY unless given). A visit the
 * budget refuses while running work keeps budget back for its end waits until some comes back
 * and asks again, so a pass spends its budget to the end; with nothing kept back, it is left for
 * the next pass.
 */
export async function visitAll(
  w: Worker,
  subs: Loaded[],
  concurrency = w.config.passConcurrency,
): Promise<Visited[]> {
  const ctx = { ...w, readBytes: readBytesFor(concurrency) };
  const { meter } = w.db;
  const results: Visited[] = new Array(subs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < subs.length; i = next++) {
      let visited = await visit(ctx, subs[i]!);
      while (visited.kind === "no-budget" && meter.kept > 0) {
        await meter.returned();
        visited = await visit(ctx, subs[i]!);
      }
      results[i] = visited;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, subs.length) }, worker));
  return results;
}

async function deliverAll(w: Worker, startedAt: number, subs: Loaded[]) {
  const visited = await visitAll(w, subs);
  const summaries = visited.flatMap((v) => (v.kind === "visited" ? [v.summary] : []));
  return summarize(startedAt, w.clock(), summaries);
}

function summarize(
  startedAt: number,
  now: number,
  subscriptions: SubscriptionSummary[],
): PassSummary {
  const total = (key: "delivered" | "retried" | "deadLettered" | "filtered") =>
    subscriptions.reduce((sum, s) => sum + s[key], 0);
  return {
    startedAt: new Date(startedAt).toISOString(),
    durationMs: now - startedAt,
    delivered: total("delivered"),
    retried: total("retried"),
    deadLettered: total("deadLettered"),
    filtered: total("filtered"),
    subscriptions,
  };
}
