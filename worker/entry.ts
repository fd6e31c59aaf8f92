// The delivery worker's side of the Worker: the `Delivery` the HTTP app uses (a kick after a
// publish, a wake after a replay/redrive/resume, POST /v1/deliver) and the cron's `scheduled`
// handler, which runs one pass. The clock is read here, and passed down.

import { type Env, loadConfig } from "../shared/config.ts";
import type { DeliveryFactory } from "../shared/delivery.ts";
import { getDb } from "../shared/redis.ts";
import { kick, runPass, wake } from "./pass.ts";

const clock = () => Date.now();

export const createDelivery: DeliveryFactory = (config, db) => ({
  kick: async (channel, woken) => {
    const summary = await kick(db, config, clock, channel, woken);
    for (const s of summary.subscriptions) if (s.error) console.error("kick failed", s);
  },
  wake: async (channel, name) => {
    await wake(db, config, clock, channel, name);
  },
  pass: () => runPass(db, config, clock),
});

export async function scheduled(_controller: ScheduledController, env: Env): Promise<void> {
  const config = loadConfig(env);
  const summary = await runPass(getDb(config), config, clock);
  if (summary.subscriptions.length > 0) {
    const { delivered, retried, deadLettered, filtered, durationMs } = summary;
    console.log(
      `delivery pass: ${summary.subscriptions.length} subscriptions, delivered ${delivered}, ` +
        `retried ${retried}, dead-lettered ${deadLettered}, filtered ${filtered}, ${durationMs} ms`,
    );
  }
}
