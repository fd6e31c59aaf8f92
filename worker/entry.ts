// The delivery worker's side of the Worker: the `Delivery` the HTTP app uses (kick after a
// publish, POST /v1/deliver) and the cron's `scheduled` handler, which runs one pass.

import { type Env, loadConfig } from "../shared/config.ts";
import type { Delivery, DeliveryFactory, PassSummary } from "../shared/delivery.ts";
import { getDb } from "../shared/redis.ts";

export const createDelivery: DeliveryFactory = (): Delivery => ({
  // TODO(delivery issue): deliver to the woken subscribers; until then the cron pass is a log line.
  kick: async () => {},
  pass: async (): Promise<PassSummary> => {
    const startedAt = Date.now();
    console.log("delivery pass: nothing to deliver yet");
    return {
      startedAt: new Date(startedAt).toISOString(),
      durationMs: Date.now() - startedAt,
      delivered: 0,
      retried: 0,
      deadLettered: 0,
      filtered: 0,
      subscriptions: [],
    };
  },
});

export async function scheduled(_controller: ScheduledController, env: Env): Promise<void> {
  const config = loadConfig(env);
  await createDelivery(config, getDb(config)).pass();
}
