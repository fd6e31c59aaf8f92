// 10. Retention: the same long run on two channels, one with retention (maxMessages), one
// without any, each with one subscriber delivered by passes as it goes. `messages` are published
// 100 to a request, so trims come on the rate-based schedule (lua/trim.ts), not on every
// publish. Reports the stream's memory per message published (MEMORY USAGE of the channel's key
// at the end), the Redis commands per published message the publishes cost, and among them the
// trim step's own (counted by name). Targets: trimming adds <= 0.01 commands per published message, and the
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
  /** The trim step's own commands (XLEN, XTRIM, XINFO, XPENDING, HSET) per published message. */
  trimCommandsPerMessage: number;
}

export interface RetentionResult {
  messages: number;
  maxMessages: number;
  on: RetentionRow;
  off: RetentionRow;
  /** The trim step's commands per published message with retention on (target <= 0.01). */
  trimCommandsPerMessage: number;
}

const PER_PUBLISH = 100;
// What the trim step runs (lua/trim.ts); a publish runs none of these otherwise.
const TRIM_COMMANDS = [
  "xlen",
  "xtrim",
  "xinfo|groups",
  "xpending",
  "hset",
  "hincrby",
  "xack",
  "xrange",
];

async function run(
  stack: BenchStack,
  channel: string,
  retention: { maxAgeMs: number | null; maxMessages: number | null },
  messages: number,
): Promise<RetentionRow> {
  const api = stack.manual;
  await subscribeAll(api, channel, [
    { name: "sub", url: stack.receivers.add(`${channel}-sub`, SECRET, { indexed: messages }) },
  ]);
  await api.json("PATCH", `/v1/channels/${channel}`, { retention });
  let commands = 0;
  let trim = 0;
  for (let i = 0; i < messages; i += PER_PUBLISH) {
    const batch = Array.from({ length: PER_PUBLISH }, (_, j) => ({
      data: { n: i + j, note: "a typical small event, about two hundred bytes of JSON in all" },
      type: "order.created",
    }));
    const c = await counted(stack.redis, () =>
      api.json("POST", `/v1/channels/${channel}/messages`, { messages: batch }),
    );
    commands += c.commands;
    for (const name of TRIM_COMMANDS) trim += c.byCommand[name] ?? 0;
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
    trimCommandsPerMessage: round(trim / messages, 5),
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
    trimCommandsPerMessage: on.trimCommandsPerMessage,
  };
}
