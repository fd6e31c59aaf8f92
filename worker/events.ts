// streamhook's own events, published to EVENTS_CHANNEL like any message, so an operator can
// subscribe a webhook to them:
//
//   subscription.failing     the first failed request after a success
//   subscription.disabled    every request failed for DISABLE_AFTER_MS: paused, not deleted
//   subscription.recovered   the first success after failing
//   message.dead_lettered    messages a visit dead-lettered, counted per visit (not one event each)
//
// One publish per visit that has something to say (the publish script: 1 EVALSHA + 1 XADD per
// event + 1 HGETALL ...), once the visit's runs have ended. The events channel's own
// subscriptions raise no events, so a failing operator webhook cannot feed itself. With the queue,
// the events channel's subscribers the publish woke are handed to it at once; without, the cron.

import type { Config } from "../shared/config.ts";
import type { SubscriptionSummary } from "../shared/delivery.ts";
import type { Db } from "../shared/redis.ts";
import { publish } from "../shared/streams.ts";
import { type Dispatch, taskFor } from "./dispatch.ts";
import type { Health } from "./report.ts";

export type EventType =
  | "subscription.failing"
  | "subscription.disabled"
  | "subscription.recovered"
  | "message.dead_lettered";

const HEALTH_EVENTS: Record<Exclude<Health, null>, EventType> = {
  failing: "subscription.failing",
  disabled: "subscription.disabled",
  recovered: "subscription.recovered",
};

export interface EventContext {
  db: Db;
  config: Config;
  dispatch: Dispatch;
  clock: () => number;
}

/** Publishes what one visit saw; never throws (an event lost is logged, delivery goes on). */
export async function publishEvents(
  ctx: EventContext,
  summary: SubscriptionSummary,
  health: Health[],
): Promise<void> {
  const channel = ctx.config.eventsChannel;
  if (channel === null || summary.channel === channel) return;
  const at = new Date(ctx.clock()).toISOString();
  const about = { channel: summary.channel, subscription: summary.subscription, at };
  const events: { type: EventType; data: Record<string, unknown> }[] = [];
  for (const h of health) {
    if (h !== null)
      events.push({ type: HEALTH_EVENTS[h], data: { ...about, error: summary.error ?? null } });
  }
  if (summary.deadLettered > 0) {
    events.push({ type: "message.dead_lettered", data: { ...about, count: summary.deadLettered } });
  }
  if (events.length === 0) return;
  try {
    const now = ctx.clock();
    const messages = events.map((e) => ({ type: e.type, data: JSON.stringify(e.data) }));
    const result = await publish(ctx.db, channel, messages, {
      now,
      retention: ctx.config.retention,
      // Events are streamhook's own publishes, with no trace of their own: each message's is
      // derived from its id (shared/trace.ts).
    });
    if (result.duplicate || result.woken.length === 0) return;
    const tasks = result.woken.map((w) => ({ task: taskFor({ channel, name: w.name }, "fanout") }));
    await ctx.dispatch.send(tasks, now);
  } catch (error) {
    console.error(
      `could not publish ${events.map((e) => e.type).join(", ")} to ${channel}:`,
      error,
    );
  }
}
