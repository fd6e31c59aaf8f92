// The seam between the HTTP functions and the delivery worker. functions/ and worker/ never import
// each other: the Worker's entry (index.ts) hands the app a `DeliveryFactory` built by worker/.

import type { Config, QueueBinding } from "./config.ts";
import type { TimerKind } from "./keys.ts";
import type { Db } from "./redis.ts";
import type { WokenSubscriber } from "./streams.ts";

export interface SubscriptionSummary {
  channel: string;
  subscription: string;
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
  error?: string;
}

export interface PassSummary {
  startedAt: string;
  durationMs: number;
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
  subscriptions: SubscriptionSummary[];
}

export interface Delivery {
  /** Delivers to the subscribers a publish just woke; the caller runs it in ctx.waitUntil. */
  kick(channel: string, woken: WokenSubscriber[]): Promise<void>;
  /** Delivers to one subscription now (after a replay, redrive or resume), in ctx.waitUntil. */
  wake(channel: string, name: string): Promise<void>;
  /** One delivery pass over everything due (the cron's job; also POST /v1/deliver). */
  pass(): Promise<PassSummary>;
  /**
   * Sends the task that runs a timer at `at` (ms) through the delivery queue, in ctx.waitUntil;
   * without a queue, nothing: the cron runs the timer when its {p}:due member comes due.
   */
  timer(kind: TimerKind, name: string, at: number): Promise<void>;
}

/** Builds the Delivery for one request; `queue` is the DELIVERY_QUEUE binding, if any. */
export type DeliveryFactory = (config: Config, db: Db, queue: QueueBinding | undefined) => Delivery;
