// 3. Latency: publish -> receive for a healthy subscriber at a steady publish rate, with no pass
// run by anyone: the publish's kick does the delivery. Each message carries the time it was sent;
// the receiver notes when it arrived (same process, same clock). Redis' command count around the
// run gives the cost per message of this path, kick and delivery included.

import { counted, maxOf, percentile, round, waitUntil } from "../measure.ts";
import type { BenchStack } from "../stack.ts";

export interface LatencyResult {
  ratePerSecond: number;
  messages: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  commandsPerMessage: number;
}

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

export async function latencyScenario(
  stack: BenchStack,
  options: { ratePerSecond: number; seconds: number },
): Promise<LatencyResult> {
  const channel = "latency";
  const receiver = `${channel}-s`;
  const url = stack.receivers.add(receiver, SECRET);
  await stack.kicked.json("POST", `/v1/channels/${channel}/subscriptions`, {
    name: "s",
    url,
    secret: SECRET,
  });
  const total = Math.round(options.ratePerSecond * options.seconds);
  const interval = 1000 / options.ratePerSecond;
  const { commands } = await counted(stack.redis, async () => {
    const started = performance.now();
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < total; i++) {
      const due = started + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      sends.push(
        stack.kicked
          .call("POST", `/v1/channels/${channel}/messages`, { data: { sentAt: Date.now(), i } })
          .then((res) => res.arrayBuffer()),
      );
    }
    await Promise.all(sends);
    await waitUntil("every message", () => stack.receivers.received(receiver) >= total, 30_000);
  });
  const samples = stack.receivers.latencies(receiver);
  return {
    ratePerSecond: options.ratePerSecond,
    messages: total,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    maxMs: maxOf(samples),
    commandsPerMessage: round(commands / total, 2),
  };
}
