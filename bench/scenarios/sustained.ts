// 6. Sustained load, no manual pass: publishes at a steady rate to a channel whose subscribers
// each take `delayMs` per request, for `seconds`, on the Worker as deployed (kick + queue). Each
// message carries the time it was sent; its receiver notes when it came. A subscriber is busy
// for as long as the run lasts, so delivery lives on hand-overs: one visit's budget ends, the
// queue carries on. Reports publish -> receive latency, Redis commands and queue operations per
// delivered message.

import { closedLoop, counted, maxOf, percentile, round, waitUntil } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { Api, BenchStack } from "../stack.ts";

/** What a load at a rate got to its subscribers (concurrent.ts, steady-stream.ts). */
export interface Arrivals {
  published: number;
  /** Distinct messages received (each scenario says over what). */
  delivered: number;
  missing: number;
  /** Publish to receipt. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Publishes that started more than one interval late (the publisher fell behind). */
  latePublishes: number;
}

export interface SustainedResult {
  ratePerSecond: number;
  subscriptions: number;
  delayMs: number;
  seconds: number;
  messagesPerPublish: number;
  delivered: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Publishes that took longer than their share of the second (the publisher fell behind). */
  latePublishes: number;
  commandsPerMessage: number;
  queueOpsPerMessage: number;
}

export const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/** Creates the subscriptions through the API, a few at a time. */
export async function subscribeAll(
  api: Api,
  channel: string,
  subs: { name: string; url: string }[],
  settings: Record<string, unknown> = {},
) {
  await closedLoop(subs.length, 8, async (i) => {
    const { name, url } = subs[i]!;
    await api.json("POST", `/v1/channels/${channel}/subscriptions`, {
      name,
      url,
      secret: SECRET,
      ...settings,
    });
  });
}

/**
 * Publishes `ratePerSecond` messages a second for `seconds`, `perPublish` to a request, on a
 * fixed timetable (a slow answer does not delay the next publish), or until `stop` is aborted.
 * Each message's data says when it was sent.
 */
export async function publishAtRate(
  api: Api,
  channel: string,
  options: { ratePerSecond: number; seconds: number; perPublish: number; stop?: AbortSignal },
): Promise<{ messages: number; late: number }> {
  const publishes = Math.round((options.ratePerSecond * options.seconds) / options.perPublish);
  const interval = (1000 * options.perPublish) / options.ratePerSecond;
  const started = performance.now();
  const sends: Promise<unknown>[] = [];
  let late = 0;
  let i = 0;
  for (; i < publishes; i++) {
    const wait = started + i * interval - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -interval) late++;
    if (options.stop?.aborted) break;
    const messages = Array.from({ length: options.perPublish }, (_, j) => ({
      data: { sentAt: Date.now(), n: i * options.perPublish + j },
    }));
    const body = options.perPublish === 1 ? messages[0] : { messages };
    sends.push(
      api.call("POST", `/v1/channels/${channel}/messages`, body).then(async (res) => {
        if (!res.ok) throw new Error(`publish: ${res.status} ${await res.text()}`);
        await res.arrayBuffer();
      }),
    );
  }
  await Promise.all(sends);
  return { messages: i * options.perPublish, late };
}

export async function sustainedScenario(
  stack: BenchStack,
  name: string,
  options: {
    ratePerSecond: number;
    subscriptions: number;
    delayMs: number;
    seconds: number;
    perPublish: number;
  },
): Promise<SustainedResult> {
  const channel = name;
  const receivers = Array.from({ length: options.subscriptions }, (_, i) => `${channel}-s${i}`);
  await subscribeAll(
    stack.kicked,
    channel,
    receivers.map((r, i) => ({
      name: `s${i}`,
      url: stack.receivers.add(r, SECRET, { delayMs: options.delayMs }),
    })),
    { batchSize: 100 },
  );
  const opsBefore = stack.queueOps();
  let total = 0;
  let late = 0;
  const { commands } = await counted(stack.redis, async () => {
    ({ messages: total, late } = await publishAtRate(stack.kicked, channel, options));
    const all = () => receivers.every((r) => stack.receivers.received(r) >= total);
    await waitUntil("every message at every subscriber", all, 120_000);
    // The last visits close, and their tasks are acked: counted with the run.
    await new Promise((resolve) => setTimeout(resolve, 1000));
  });
  const ops = opsBetween(opsBefore, stack.queueOps());
  const samples = receivers.flatMap((r) => stack.receivers.latencies(r));
  const delivered = total * options.subscriptions;
  return {
    ...options,
    messagesPerPublish: options.perPublish,
    delivered,
    p50Ms: percentile(samples, 50),
    p99Ms: percentile(samples, 99),
    maxMs: maxOf(samples),
    latePublishes: late,
    commandsPerMessage: round(commands / delivered, 4),
    queueOpsPerMessage: round(ops.operations / delivered, 5),
  };
}
