// The delivery worker's side of the Worker: the `Delivery` the HTTP app uses (a kick after a
// publish, a wake after a replay/redrive/resume, POST /v1/deliver), the cron's `scheduled`
// handler, and the delivery queue's `queue` handler. The clock and the bindings are read here,
// and passed down; each invocation gets its own meter (shared/meter.ts), its budget.

import { type Config, type Env, loadConfig, type QueueBinding } from "../shared/config.ts";
import type { DeliveryFactory } from "../shared/delivery.ts";
import { Meter } from "../shared/meter.ts";
import { type Db, getDb } from "../shared/redis.ts";
import { consume } from "./consumer.ts";
import { plannedTimer, queueDispatch } from "./dispatch.ts";
import { settleSoon, writeLedger } from "./ledger.ts";
import { cron, kick, runPass, wake } from "./pass.ts";
import type { Worker } from "./worker.ts";

const clock = () => Date.now();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The meter of an invocation that starts now: PASS_MAX_SUBREQUESTS, and PASS_BUDGET_MS. */
export const invocationMeter = (config: Config, now: number) =>
  new Meter({ limit: config.passMaxSubrequests, deadline: now + config.passBudgetMs });

function worker(env: Env): Worker {
  const config = loadConfig(env);
  return invocation(config, getDb(config, invocationMeter(config, clock())), env.DELIVERY_QUEUE);
}

/** The Worker of an invocation: its kick delivers as pass.ts's, in the same invocation. */
function invocation(config: Config, db: Db, queue: QueueBinding | undefined): Worker {
  const w: Worker = {
    db,
    config,
    clock,
    sleep,
    dispatch: queueDispatch(queue, db.meter),
    kick: (channel, woken) => kick(w, channel, woken),
  };
  return w;
}

export const createDelivery: DeliveryFactory = (config, db: Db, queue) => {
  const w = invocation(config, db, queue);
  return {
    kick: async (channel, woken) => {
      const summary = await kick(w, channel, woken);
      for (const s of summary.subscriptions) if (s.error) console.error("kick failed", s);
      await settleSoon(db, clock, sleep);
    },
    wake: async (channel, name) => {
      await wake(w, channel, name);
      await writeLedger(db);
    },
    pass: async () => {
      const summary = await runPass(w);
      await writeLedger(db);
      return summary;
    },
    timer: async (kind, name, at) => {
      const now = clock();
      if (w.dispatch.queued) await w.dispatch.send([plannedTimer(kind, name, at, now)], now);
    },
  };
};

export async function scheduled(controller: ScheduledController, env: Env): Promise<void> {
  // The scheduled time is the timers' clock (worker/timers.ts): a test passes a later minute in.
  const w = worker(env);
  const result = await cron(w, controller.scheduledTime);
  await writeLedger(w.db);
  if ("dispatched" in result) {
    if (result.dispatched > 0) console.log(`cron: ${result.dispatched} subscriptions to the queue`);
  } else if (result.subscriptions.length > 0) {
    const { delivered, retried, deadLettered, filtered, durationMs } = result;
    console.log(
      `delivery pass: ${result.subscriptions.length} subscriptions, delivered ${delivered}, ` +
        `retried ${retried}, dead-lettered ${deadLettered}, filtered ${filtered}, ${durationMs} ms`,
    );
  }
}

export async function queue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const w = worker(env);
  await consume(w, batch.messages);
  await writeLedger(w.db);
}
