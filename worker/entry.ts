// The delivery worker's side of the Worker: the `Delivery` the HTTP app uses (a kick after a
// publish, a wake after a replay/redrive/resume, POST /v1/deliver), the cron's `scheduled`
// handler, and the delivery queue's `queue` handler. The clock and the bindings are read here,
// and passed down.

import { type Env, loadConfig } from "../shared/config.ts";
import type { DeliveryFactory } from "../shared/delivery.ts";
import { getDb } from "../shared/redis.ts";
import { consume } from "./consumer.ts";
import { queueDispatch } from "./dispatch.ts";
import { Pacer } from "./pace.ts";
import { cron, kick, runPass, type Worker, wake } from "./pass.ts";

const clock = () => Date.now();
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
// Module scope: lives as long as the isolate, so pacing carries across its visits (pace.ts).
const pace = new Pacer();

function worker(env: Env): Worker {
  const config = loadConfig(env);
  const dispatch = queueDispatch(env.DELIVERY_QUEUE);
  return { db: getDb(config), config, clock, sleep, pace, dispatch };
}

export const createDelivery: DeliveryFactory = (config, db, queue) => {
  const w: Worker = { db, config, clock, sleep, pace, dispatch: queueDispatch(queue) };
  return {
    kick: async (channel, woken) => {
      const summary = await kick(w, channel, woken);
      for (const s of summary.subscriptions) if (s.error) console.error("kick failed", s);
    },
    wake: async (channel, name) => {
      await wake(w, channel, name);
    },
    pass: () => runPass(w),
  };
};

export async function scheduled(_controller: ScheduledController, env: Env): Promise<void> {
  const result = await cron(worker(env));
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
  await consume(worker(env), batch.messages);
}
