// 8. Fan-out, no manual pass: one message published to a channel with `subscriptions`
// subscribers, on the Worker as deployed. The kick visits the first few at once and hands the
// rest to the queue, whose consumers deliver them (locally, Miniflare's broker runs one consumer
// batch of 100 at a time; Cloudflare runs up to 250 side by side). Reports the time from the
// publish until every subscriber has the message.

import { counted, round, waitUntil } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { SECRET, subscribeAll } from "./sustained.ts";

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

export async function fanoutScenario(
  stack: BenchStack,
  options: { subscriptions: number; timeoutMs: number },
): Promise<FanoutResult> {
  const channel = "fanout";
  const names = Array.from({ length: options.subscriptions }, (_, i) => `s${i}`);
  await subscribeAll(
    stack.kicked,
    channel,
    names.map((name) => ({ name, url: stack.receivers.add(`${channel}-${name}`, SECRET) })),
  );
  const opsBefore = stack.queueOps();
  const everyone = () => names.every((name) => stack.receivers.received(`${channel}-${name}`) > 0);
  let seconds = 0;
  let withinOneSecond = -1;
  const { commands, byCommand } = await counted(stack.redis, async () => {
    const started = performance.now();
    await stack.kicked.json("POST", `/v1/channels/${channel}/messages`, { data: "to everyone" });
    const oneSecond = setTimeout(() => {
      withinOneSecond = names.filter((n) => stack.receivers.received(`${channel}-${n}`) > 0).length;
    }, 1000);
    await waitUntil("every subscriber", everyone, options.timeoutMs);
    seconds = (performance.now() - started) / 1000;
    clearTimeout(oneSecond);
    if (withinOneSecond < 0) withinOneSecond = names.length;
    // The last visits close and their tasks are acked: counted with the run.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  });
  const ops = opsBetween(opsBefore, stack.queueOps());
  return {
    subscriptions: options.subscriptions,
    seconds: round(seconds, 2),
    withinOneSecond,
    commandsPerDelivery: round(commands / options.subscriptions, 2),
    byCommand,
    queueOpsPerMessage: round(ops.operations / options.subscriptions, 2),
  };
}
