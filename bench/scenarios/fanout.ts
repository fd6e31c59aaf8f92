// 8. Fan-out, no manual pass: one message published to a channel with `subscriptions`
// subscribers, on the Worker as deployed. The kick visits the first few at once and hands the
// rest to the queue, whose consumers deliver them (locally, Miniflare's broker runs one consumer
// batch of 100 at a time; Cloudflare runs up to 250 side by side). Reports the time from the
// publish until every subscriber has the message.
//
// Twice: alone (fanout), and loaded (fanout-loaded): on a channel of its own, while a steady load
// runs on the same stack (the busy-subscriber scenario's: messages published at a fixed rate to
// another channel whose subscribers each take 100 ms to answer, so their delivery lives on the
// same queue's hand-overs the fan-out needs). The load starts `warmupMs` before the publish, so
// its backlog and hand-overs are under way, and stops once every subscriber has the message.

import { counted, maxOf, percentile, round, waitFor, waitUntil } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { publishAtRate, SECRET, subscribeAll } from "./sustained.ts";

export interface FanoutResult {
  subscriptions: number;
  seconds: number;
  /** Subscribers that got the message within the first second. */
  withinOneSecond: number;
  /** Redis commands per subscriber reached, the publish included. */
  commandsPerDelivery: number;
  byCommand: Record<string, number>;
  queueOpsPerMessage: number;
}

export interface FanoutLoad {
  ratePerSecond: number;
  perPublish: number;
  subscriptions: number;
  /** Each of the load's subscribers answers after this long. */
  delayMs: number;
}

export interface LoadedFanoutResult {
  subscriptions: number;
  seconds: number;
  withinOneSecond: number;
  load: FanoutLoad & {
    warmupSeconds: number;
    /** Messages the load published, from its start until the fan-out was complete. */
    published: number;
    /** Deliveries of those within `drainMs` after the load stopped, of published x subscriptions. */
    delivered: number;
    /** The load's publish -> receive latencies. */
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    latePublishes: number;
  };
}

/** Subscribes `count` receivers to `channel`; returns their receiver names. */
async function subscribers(stack: BenchStack, channel: string, count: number) {
  const names = Array.from({ length: count }, (_, i) => `s${i}`);
  await subscribeAll(
    stack.kicked,
    channel,
    names.map((name) => ({ name, url: stack.receivers.add(`${channel}-${name}`, SECRET) })),
  );
  return names.map((name) => `${channel}-${name}`);
}

/** Publishes one message to `channel` and waits until every receiver has it. */
async function fanOut(stack: BenchStack, channel: string, receivers: string[], timeoutMs: number) {
  const reached = () => receivers.filter((r) => stack.receivers.received(r) > 0).length;
  const started = performance.now();
  await stack.kicked.json("POST", `/v1/channels/${channel}/messages`, { data: "to everyone" });
  let withinOneSecond = -1;
  const oneSecond = setTimeout(() => {
    withinOneSecond = reached();
  }, 1000);
  await waitUntil("every subscriber", () => reached() === receivers.length, timeoutMs);
  const seconds = (performance.now() - started) / 1000;
  clearTimeout(oneSecond);
  // Not fired: everyone had it within the first second.
  if (withinOneSecond < 0) withinOneSecond = receivers.length;
  return { seconds: round(seconds, 2), withinOneSecond };
}

export async function fanoutScenario(
  stack: BenchStack,
  options: { subscriptions: number; timeoutMs: number },
): Promise<FanoutResult> {
  const receivers = await subscribers(stack, "fanout", options.subscriptions);
  const opsBefore = stack.queueOps();
  const { result, commands, byCommand } = await counted(stack.redis, async () => {
    const result = await fanOut(stack, "fanout", receivers, options.timeoutMs);
    // The last visits close and their tasks are acked: counted with the run.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return result;
  });
  const ops = opsBetween(opsBefore, stack.queueOps());
  return {
    subscriptions: options.subscriptions,
    ...result,
    commandsPerDelivery: round(commands / options.subscriptions, 2),
    byCommand,
    queueOpsPerMessage: round(ops.operations / options.subscriptions, 2),
  };
}

export async function loadedFanoutScenario(
  stack: BenchStack,
  options: {
    subscriptions: number;
    timeoutMs: number;
    load: FanoutLoad;
    warmupMs: number;
    /** How long the load's last messages get to arrive after it stops. */
    drainMs: number;
  },
): Promise<LoadedFanoutResult> {
  const { load } = options;
  const receivers = await subscribers(stack, "fanout-loaded", options.subscriptions);
  const loadChannel = "fanout-load";
  const loadReceivers = Array.from(
    { length: load.subscriptions },
    (_, i) => `${loadChannel}-s${i}`,
  );
  await subscribeAll(
    stack.kicked,
    loadChannel,
    loadReceivers.map((r, i) => ({
      name: `s${i}`,
      url: stack.receivers.add(r, SECRET, { delayMs: load.delayMs }),
    })),
    { batchSize: 100 },
  );

  const stop = new AbortController();
  const loading = publishAtRate(stack.kicked, loadChannel, {
    ratePerSecond: load.ratePerSecond,
    perPublish: load.perPublish,
    // Until stopped; this bound only ends a load whose fan-out never returns.
    seconds: (options.warmupMs + options.timeoutMs) / 1000 + 60,
    stop: stop.signal,
  });
  let result: { seconds: number; withinOneSecond: number };
  try {
    await new Promise((resolve) => setTimeout(resolve, options.warmupMs));
    result = await fanOut(stack, "fanout-loaded", receivers, options.timeoutMs);
  } finally {
    stop.abort();
  }
  const { messages: published, late } = await loading;
  await waitFor(
    () => loadReceivers.every((r) => stack.receivers.received(r) >= published),
    options.drainMs,
  );
  const delivered = loadReceivers.reduce((sum, r) => sum + stack.receivers.received(r), 0);
  // What the load left undelivered must not busy the Worker in a later scenario.
  for (let i = 0; i < load.subscriptions; i++) {
    const removed = await stack.kicked.call(
      "DELETE",
      `/v1/channels/${loadChannel}/subscriptions/s${i}`,
    );
    if (!removed.ok) throw new Error(`delete the load's subscription: ${removed.status}`);
  }
  const samples = loadReceivers.flatMap((r) => stack.receivers.latencies(r));
  return {
    subscriptions: options.subscriptions,
    ...result,
    load: {
      ...load,
      warmupSeconds: options.warmupMs / 1000,
      published,
      delivered,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      maxMs: maxOf(samples),
      latePublishes: late,
    },
  };
}
