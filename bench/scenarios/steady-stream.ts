// A steady stream (issue 21): 500 messages a second published in batches of 10 to a channel with
// 10 subscribers at batchSize 100 that answer at once, for 20 s, on the Worker as deployed (the
// publish's kick, the delivery queue bound, no manual pass). What a delivery costs when messages
// keep coming: Redis' own command count (what Upstash bills) from the first publish until every
// subscriber has every message and the last visits have closed, publishes included, and the
// queue's operations, per delivery (a message to each subscriber is a delivery).

import { counted, maxOf, percentile, round, waitFor } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { type Arrivals, publishAtRate, SECRET, subscribeAll } from "./sustained.ts";

/** delivered: distinct messages received, summed over the subscribers; missing: published x subscriptions - delivered. */
export interface SteadyStreamResult extends Arrivals {
  ratePerSecond: number;
  perPublish: number;
  subscriptions: number;
  batchSize: number;
  seconds: number;
  commandsPerDelivery: number;
  queueOpsPerDelivery: number;
}

// After the last receipt: the last visits settle, write their attempt log and counters, and
// their queue tasks are acked. Those belong to the run.
const CLOSE_MS = 1000;

export async function steadyStreamScenario(
  stack: BenchStack,
  options: {
    ratePerSecond: number;
    perPublish: number;
    subscriptions: number;
    batchSize: number;
    seconds: number;
    timeoutMs: number;
  },
): Promise<SteadyStreamResult> {
  const channel = "steady-stream";
  const receivers = Array.from({ length: options.subscriptions }, (_, i) => `${channel}-s${i}`);
  await subscribeAll(
    stack.kicked,
    channel,
    receivers.map((r, i) => ({ name: `s${i}`, url: stack.receivers.add(r, SECRET) })),
    { batchSize: options.batchSize },
  );
  const received = () => receivers.reduce((sum, r) => sum + stack.receivers.received(r), 0);
  const opsBefore = stack.queueOps();
  let published = 0;
  let late = 0;
  const { commands } = await counted(stack.redis, async () => {
    ({ messages: published, late } = await publishAtRate(stack.kicked, channel, options));
    await waitFor(() => received() >= published * options.subscriptions, options.timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, CLOSE_MS));
  });
  const ops = opsBetween(opsBefore, stack.queueOps());
  const delivered = received();
  const samples = receivers.flatMap((r) => stack.receivers.latencies(r));
  return {
    ratePerSecond: options.ratePerSecond,
    perPublish: options.perPublish,
    subscriptions: options.subscriptions,
    batchSize: options.batchSize,
    seconds: options.seconds,
    published,
    delivered,
    missing: published * options.subscriptions - delivered,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    maxMs: maxOf(samples),
    latePublishes: late,
    commandsPerDelivery: round(commands / Math.max(1, delivered), 4),
    queueOpsPerDelivery: round(ops.operations / Math.max(1, delivered), 5),
  };
}
