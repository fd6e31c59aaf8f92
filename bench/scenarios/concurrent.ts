// Concurrent push, no manual pass: one subscription at batch size 1, whose endpoint answers
// each request after 200 ms and takes any number of them at once (like every HTTP service), gets
// 50 single-message publishes a second on a fixed timetable, on the Worker as deployed (kick +
// queue). A subscription that sends one request at a time delivers at most batchSize / latency
// = 5 messages a second there, so its backlog grows by 45 a second; keeping up takes about
// rate x latency = 10 requests in flight. Measured with the subscription's default settings
// (no maxConcurrency given): what a user gets without tuning.
//
// After publishing ends, waits up to a grace period for the rest; a message not received by then
// is missing. Reports publish -> receive latency (the receiver notes a message when it answers,
// so the endpoint's 200 ms are included; over the messages received), the most requests the
// endpoint had in flight at once, and Redis commands per delivered message (publishes and kicks
// included, as in the sustained scenarios). The subscription is deleted at the end, so that what
// it did not deliver is not left to busy the Worker during a later scenario.

import { counted, maxOf, percentile, round, waitFor } from "../measure.ts";
import type { BenchStack } from "../stack.ts";
import { type Arrivals, publishAtRate, SECRET, subscribeAll } from "./sustained.ts";

/** delivered: distinct messages received within the grace period. */
export interface ConcurrentResult extends Arrivals {
  ratePerSecond: number;
  seconds: number;
  /** The endpoint's time per request. */
  delayMs: number;
  batchSize: number;
  /** How long after publishing ended a message could still come in time. */
  graceMs: number;
  /** The most requests the endpoint had in flight at once. */
  maxInFlight: number;
  commandsPerMessage: number;
}

export async function concurrentScenario(
  stack: BenchStack,
  options: { ratePerSecond: number; seconds: number; delayMs: number; graceMs: number },
): Promise<ConcurrentResult> {
  const channel = "concurrent";
  const receiver = `${channel}-s`;
  const batchSize = 1;
  const url = stack.receivers.add(receiver, SECRET, { delayMs: options.delayMs });
  await subscribeAll(stack.kicked, channel, [{ name: "s", url }], { batchSize });
  let published = 0;
  let late = 0;
  const { commands } = await counted(stack.redis, async () => {
    ({ messages: published, late } = await publishAtRate(stack.kicked, channel, {
      ratePerSecond: options.ratePerSecond,
      seconds: options.seconds,
      perPublish: 1,
    }));
    await waitFor(() => stack.receivers.received(receiver) >= published, options.graceMs);
  });
  const delivered = stack.receivers.received(receiver);
  const samples = stack.receivers.latencies(receiver);
  const removed = await stack.kicked.call("DELETE", `/v1/channels/${channel}/subscriptions/s`);
  if (!removed.ok) throw new Error(`delete the subscription: ${removed.status}`);
  return {
    ...options,
    batchSize,
    published,
    delivered,
    missing: published - delivered,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    maxMs: maxOf(samples),
    maxInFlight: stack.receivers.maxInFlight(receiver),
    latePublishes: late,
    commandsPerMessage: round(commands / Math.max(1, delivered), 4),
  };
}
