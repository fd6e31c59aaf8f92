// Delayed messages, no manual pass, on the Worker as deployed (kick + queue): messages published
// with a `notBefore` 1 to 5 s ahead, 100 to a request, enter their channel when due (a timer task
// the queue holds back: worker/delayed.ts) and are delivered at once.
//
//   cost      a channel without subscribers: Redis' own command counts while the messages are
//             published, then while they enter (until none waits), per message; and the queue
//             operations the timer tasks took
//   lateness  the same load to a channel with one subscriber: each message's arrival at the
//             receiver (after its signature is checked) against its notBefore; negative would be
//             early (a bug). The receiver notes the time as it reads the request, a millisecond
//             or so after the Worker sent it, so a figure is that much over the true lateness.

import { counted, maxOf, percentile, round, waitUntil } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { SECRET, subscribeAll } from "./sustained.ts";

export interface DelayedResult {
  messages: number;
  /** The delays, from the first publish: between these (ms). */
  minDelayMs: number;
  maxDelayMs: number;
  /** Receipt after notBefore. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Received before their notBefore (a bug if ever > 0). */
  early: number;
  /** Not received within 30 s of the last one's time. */
  missing: number;
  /** Redis commands per delayed message: publishing them, and letting them in (no subscriber). */
  publishCommandsPerMessage: number;
  enterCommandsPerMessage: number;
  commandsPerMessage: number;
  /** Timer tasks' queue operations per delayed message. */
  queueOpsPerMessage: number;
}

const PER_PUBLISH = 100;

/** Publishes `messages` to `channel`, each due 1-5 s after `start`, its data {sentAt: due, n}. */
async function publishDelayed(stack: BenchStack, channel: string, messages: number, start: number) {
  const sends: Promise<unknown>[] = [];
  for (let first = 0; first < messages; first += PER_PUBLISH) {
    const batch = Array.from({ length: Math.min(PER_PUBLISH, messages - first) }, (_, j) => {
      const n = first + j;
      // A permutation of the four seconds: publishes take turns bringing the timer earlier.
      const due = start + 1000 + Math.floor((((n * 7919) % messages) * 4000) / messages);
      return { data: { sentAt: due, n }, notBefore: new Date(due).toISOString() };
    });
    sends.push(stack.kicked.json("POST", `/v1/channels/${channel}/messages`, { messages: batch }));
  }
  await Promise.all(sends);
}

export async function delayedScenario(
  stack: BenchStack,
  options: { messages: number },
): Promise<DelayedResult> {
  const { messages } = options;
  const waiting = (channel: string) => stack.redis.zcard(stack.keys.delayed(channel));

  // Cost: nobody subscribed, so what is counted is the publishes and the entering alone.
  const costChannel = "delayed-cost";
  const opsBefore = stack.queueOps();
  const start = Date.now();
  const published = await counted(stack.redis, () =>
    publishDelayed(stack, costChannel, messages, start),
  );
  let left = messages;
  let polls = 0; // the watch's own ZCARDs, taken off the count
  const entered = await counted(stack.redis, async () => {
    const watch = setInterval(async () => {
      polls++;
      left = await waiting(costChannel);
    }, 50);
    try {
      await waitUntil("every delayed message entered", () => left === 0, 60_000);
    } finally {
      clearInterval(watch);
    }
  });
  const ops = opsBetween(opsBefore, stack.queueOps());

  // Lateness: one subscriber, the same load.
  const channel = "delayed";
  const url = stack.receivers.add(channel, SECRET);
  await subscribeAll(stack.kicked, channel, [{ name: "sub", url }], { batchSize: 100 });
  await publishDelayed(stack, channel, messages, Date.now());
  const done = await new Promise<boolean>((resolve) => {
    const deadline = Date.now() + 5_000 + 30_000;
    const watch = setInterval(() => {
      const all = stack.receivers.received(channel) >= messages;
      if (all || Date.now() > deadline) {
        clearInterval(watch);
        resolve(all);
      }
    }, 20);
  });
  const late = stack.receivers.latencies(channel);
  const publishCommands = published.commands / messages;
  const enterCommands = (entered.commands - polls) / messages;
  return {
    messages,
    minDelayMs: 1000,
    maxDelayMs: 5000,
    p50Ms: percentile(late, 50),
    p99Ms: percentile(late, 99),
    maxMs: maxOf(late),
    early: late.filter((ms) => ms < 0).length,
    missing: done ? 0 : messages - stack.receivers.received(channel),
    publishCommandsPerMessage: round(publishCommands, 3),
    enterCommandsPerMessage: round(enterCommands, 3),
    commandsPerMessage: round(publishCommands + enterCommands, 3),
    queueOpsPerMessage: round(ops.operations / messages, 3),
  };
}
