// 10. Retention: the same long run on two channels, one with retention (maxMessages), one
// without any, each with one subscriber delivered by passes as it goes. `messages` are published
// 100 to a request, so trims come on the rate-based schedule (lua/trim.ts), not on every
// publish. Reports the stream's memory per message published (MEMORY USAGE of the channel's key
// at the end) and the Redis commands per published message the publishes cost, so the difference
// is what trimming adds. Targets: trimming adds <= 0.01 commands per published message, and the
// stream with retention holds its bound (memory flat, not growing with the run).

import { counted, round } from "../measure.ts";
import type { BenchStack } from "../stack.ts";
import { SECRET, subscribeAll } from "./sustained.ts";

export interface RetentionRow {
  retention: string;
  length: number;
  memoryBytes: number;
  bytesPerMessage: number;
  publishCommandsPerMessage: number;
}

export interface RetentionResult {
  messages: number;
  maxMessages: number;
  on: RetentionRow;
  off: RetentionRow;
  /** on minus off: commands per published message that trimming adds (target <= 0.01). */
  trimCommandsPerMessage: number;
}

const PER_PUBLISH = 100;

async function run(
  stack: BenchStack,
  channel: string,
  retention: { maxAgeMs: number | null; maxMessages: number | null },
  messages: number,
): Promise<RetentionRow> {
  const api = stack.manual;
  await subscribeAll(api, channel, [
    { name: "sub", url: stack.receivers.add(`${channel}-sub`, SECRET, { ordered: true }) },
  ]);
  await api.json("PATCH", `/v1/channels/${channel}`, { retention });
  let commands = 0;
  for (let i = 0; i < messages; i += PER_PUBLISH) {
    const batch = Array.from({ length: PER_PUBLISH }, (_, j) => ({
      data: { n: i + j, note: "a typical small event, about two hundred bytes of JSON in all" },
      type: "order.created",
    }));
    commands += (
      await counted(stack.redis, () =>
        api.json("POST", `/v1/channels/${channel}/messages`, { messages: batch }),
      )
    ).commands;
    // Delivered as it goes (a pass every 10 publishes), so what is acknowledged may be trimmed.
    if ((i / PER_PUBLISH) % 10 === 9) await api.json("POST", "/v1/deliver");
  }
  const key = stack.keys.channel(channel);
  const length = await stack.redis.xlen(key);
  const memoryBytes = Number(await stack.redis.memory("USAGE", key));
  return {
    retention: retention.maxMessages === null ? "none" : `maxMessages ${retention.maxMessages}`,
    length,
    memoryBytes,
    bytesPerMessage: round(memoryBytes / messages, 2),
    publishCommandsPerMessage: round(commands / messages, 5),
  };
}

export async function retentionScenario(
  stack: BenchStack,
  options: { messages: number; maxMessages: number },
): Promise<RetentionResult> {
  const off = await run(
    stack,
    "retention-off",
    { maxAgeMs: null, maxMessages: null },
    options.messages,
  );
  const on = await run(
    stack,
    "retention-on",
    { maxAgeMs: null, maxMessages: options.maxMessages },
    options.messages,
  );
  return {
    ...options,
    on,
    off,
    trimCommandsPerMessage: round(on.publishCommandsPerMessage - off.publishCommandsPerMessage, 5),
  };
}
