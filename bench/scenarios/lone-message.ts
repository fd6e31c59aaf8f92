// A lone message (issue 21): one subscriber (its default batchSize) of a channel that gets 100
// single publishes 50 ms apart, on the Worker as deployed (the publish's kick, the delivery queue
// bound, no manual pass; the attempt log and the counters are always on). Each message is on its
// own: the one before has been delivered by the time it comes, so every publish pays for a
// delivery of one, the dearest path there is. What it costs: Redis' own command count (what
// Upstash bills, the commands inside scripts included) and the queue's operations, from the first
// publish until every message is received and its delivery has closed, per message.

import { counted, maxOf, percentile, round, waitFor } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { publishAtRate, SECRET, subscribeAll } from "./sustained.ts";

export interface LoneMessageResult {
  messages: number;
  intervalMs: number;
  /** Distinct messages the subscriber received. */
  delivered: number;
  /**
   * Webhook requests it got: as many as messages when each went alone; fewer when the machine
   * was slow enough that a message came while the one before was still on its way (cheaper).
   */
  requests: number;
  missing: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Publish to receipt, the delivery's close included, per message published. */
  commandsPerMessage: number;
  /** The run's commands by name, in all (divide by `messages` for one message's). */
  byCommand: Record<string, number>;
  queueOpsPerMessage: number;
}

// After the last receipt: the visit that sent it still settles the batch, writes the attempt
// log and the counters, and its queue task (if any) is acked. Those belong to the message.
const CLOSE_MS = 1000;

export async function loneMessageScenario(
  stack: BenchStack,
  options: { messages: number; intervalMs: number; timeoutMs: number },
): Promise<LoneMessageResult> {
  const channel = "lone-message";
  const receiver = `${channel}-s`;
  const url = stack.receivers.add(receiver, SECRET);
  await subscribeAll(stack.kicked, channel, [{ name: "s", url }]);
  const opsBefore = stack.queueOps();
  let published = 0;
  const { commands, byCommand } = await counted(stack.redis, async () => {
    ({ messages: published } = await publishAtRate(stack.kicked, channel, {
      ratePerSecond: 1000 / options.intervalMs,
      seconds: (options.messages * options.intervalMs) / 1000,
      perPublish: 1,
    }));
    await waitFor(() => stack.receivers.received(receiver) >= published, options.timeoutMs);
    await new Promise((resolve) => setTimeout(resolve, CLOSE_MS));
  });
  const ops = opsBetween(opsBefore, stack.queueOps());
  const delivered = stack.receivers.received(receiver);
  const samples = stack.receivers.latencies(receiver);
  return {
    messages: published,
    intervalMs: options.intervalMs,
    delivered,
    requests: stack.receivers.requests(receiver),
    missing: published - delivered,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    maxMs: maxOf(samples),
    commandsPerMessage: round(commands / published, 2),
    byCommand,
    queueOpsPerMessage: round(ops.operations / published, 3),
  };
}
