// Pull throughput: a backlog pulled and acked by 4 consumers of one pull subscription, over HTTP
// through the Worker (wrangler dev), against a minimal reference over the same bridge: 4
// consumers of one consumer group doing XREADGROUP COUNT n + XACK directly with @upstash/redis.
// Same messages, same batch size, same 4-way concurrency.

import { counted, round } from "../measure.ts";
import type { BenchStack } from "../stack.ts";

export interface PullResult {
  messages: number;
  consumers: number;
  max: number;
  perSecond: number;
  reference: number;
  vsReference: number;
  /** Redis commands per message pulled and acked (pull + ack). */
  commandsPerMessage: number;
  referenceCommandsPerMessage: number;
}

type Entries = [string, [string, string[]][]][] | null;

export async function pullScenario(
  stack: BenchStack,
  o: { messages: number; consumers: number; max: number },
): Promise<PullResult> {
  const channel = "pull-bench";
  const api = stack.manual;
  await api.json("POST", `/v1/channels/${channel}/subscriptions`, {
    name: "work",
    mode: "pull",
    from: "earliest",
  });
  for (let i = 0; i < o.messages; i += 1000) {
    const n = Math.min(1000, o.messages - i);
    const messages = Array.from({ length: n }, (_, j) => ({ type: "t", data: { n: i + j } }));
    await api.json("POST", `/v1/channels/${channel}/messages`, { messages });
  }
  const stream = stack.keys.channel(channel);
  await stack.redis.xgroup("CREATE", stream, "reference", "0");

  const path = `/v1/channels/${channel}/subscriptions/work`;
  let taken = 0;
  const pulled = await counted(stack.redis, async () => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: o.consumers }, async (_, c) => {
        for (;;) {
          const { messages } = await api.json<{ messages: { id: string }[] }>(
            "POST",
            `${path}/pull`,
            { max: o.max, consumer: `c${c}`, visibilityTimeoutMs: 60_000 },
          );
          if (messages.length === 0) return;
          taken += messages.length;
          await api.json("POST", `${path}/ack`, { ids: messages.map((m) => m.id) });
        }
      }),
    );
    return performance.now() - started;
  });

  let referenceTaken = 0;
  const reference = await counted(stack.redis, async () => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: o.consumers }, async (_, c) => {
        for (;;) {
          const reply = (await stack.rest.xreadgroup("reference", `c${c}`, stream, ">", {
            count: o.max,
          })) as unknown as Entries;
          const entries = reply?.[0]?.[1] ?? [];
          if (entries.length === 0) return;
          referenceTaken += entries.length;
          await stack.rest.xack(
            stream,
            "reference",
            entries.map(([id]) => id),
          );
        }
      }),
    );
    return performance.now() - started;
  });
  if (taken !== o.messages || referenceTaken !== o.messages) {
    throw new Error(`pull took ${taken}, reference ${referenceTaken}, of ${o.messages}`);
  }
  const perSecond = round(o.messages / (pulled.result / 1000), 0);
  const referencePerSecond = round(o.messages / (reference.result / 1000), 0);
  return {
    messages: o.messages,
    consumers: o.consumers,
    max: o.max,
    perSecond,
    reference: referencePerSecond,
    vsReference: round(perSecond / referencePerSecond),
    commandsPerMessage: round(pulled.commands / o.messages, 3),
    referenceCommandsPerMessage: round(reference.commands / o.messages, 3),
  };
}
