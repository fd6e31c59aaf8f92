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
import { taskFor } from "./dispatch.ts";
import { dueWork, type Loaded, load, type UnitSchedule } from "./schedule.ts";
import { runTimers } from "./timers.ts";
import { type Visited, visit } from "./visit.ts";
import type { Worker } from "./worker.ts";

export type { Worker } from "./worker.ts";

/**
 * The subscriptions due now, earliest first, at most `limit`, and the timers due by `timersAt`
 * (the cron's scheduled time; now otherwise). 1 ZRANGE.
 */
async function dueSubscriptions(w: Worker, now: number, limit: number, timersAt = now) {
  const due = await dueWork(w.db, Math.max(now, timersAt), limit * 4);
  const wanted = new Map<string, { channel: string; name: string }>();
  for (const { unit, at } of due.units) {
    if (at > now) continue;
    if (wanted.size >= limit) break;
    wanted.set(`${unit.channel}/${unit.subscription}`, {
      channel: unit.channel,
      name: unit.subscription,
    });
  }
  return { subs: [...wanted.values()], timers: due.timers, timersAt };
}

/** One pass that visits what is due (the cron's without a queue; POST /v1/deliver's always). */
export async function runPass(w: Worker, timersAt?: number): Promise<PassSummary> {
  const startedAt = w.clock();
  const due = await dueSubscriptions(w, startedAt, w.config.passMaxSubscriptions, timersAt);
  return passWith(w, startedAt, due);
}

async function passWith(
  w: Worker,
  startedAt: number,
  due: Awaited<ReturnType<typeof dueSubscriptions>>,
): Promise<PassSummary> {
  // Timers first: what they publish (a schedule's run, delayed messages entering) they kick
  // themselves, before the pass's own deliveries take the budget.
  if (due.timers.length > 0) await runTimers(w, due.timers, Math.max(startedAt, due.timersAt));
  if (due.subs.length === 0) return summarize(startedAt, w.clock(), []);
  return deliverAll(w, startedAt, await load(w.db, due.subs));
}

// How many subscriptions one cron run hands to the queue (100 tasks per sendBatch): far more than
// a pass visits, since the queue's consumers do the visiting.
const DISPATCH_MAX = 10_000;

/**
 * The cron's job: with a queue, a task for every due subscription (nothing when nothing is due:
 * one ZRANGE); without one, a pass.
 */
export async function cron(
  w: Worker,
  scheduledTime = w.clock(),
): Promise<PassSummary | { dispatched: number }> {
  if (!w.dispatch.queued) return runPass(w, scheduledTime);
  const now = w.clock();
  const cap = Math.min(DISPATCH_MAX, Math.max(1, w.db.meter.left - 2) * 100);
  const due = await dueSubscriptions(w, now, cap, scheduledTime);
  const tasks = due.subs.map((s) => ({ task: taskFor(s, "fanout") }));
  if (tasks.length > 0 && !(await w.dispatch.send(tasks, now))) return passWith(w, now, due);
  await runTimers(w, due.timers, Math.max(now, scheduledTime));
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
