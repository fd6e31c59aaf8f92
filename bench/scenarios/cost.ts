// 4. Cost: Redis commands (Redis' own count, commands inside scripts included: what Upstash
// bills) per publish, per batch publish, and per idle pass with 0, 100 and 1,000 subscriptions.
// Run first, on an empty database, so "0 subscriptions" is true.

import { counted, round } from "../measure.ts";
import type { BenchStack } from "../stack.ts";

export interface CostResult {
  /** Single publish on a channel without subscriptions, its kick included (target <= 3). */
  publishCommands: number;
  /** Batch publish of `batchSize` messages, no subscriptions (target <= batchSize + 3). */
  batchPublishCommands: number;
  batchSize: number;
  /** Idle pass: subscriptions -> commands (target <= 3 whatever the count). */
  idlePass: { subscriptions: number; commands: number }[];
}

export async function costScenario(stack: BenchStack, batchSize: number): Promise<CostResult> {
  const publishes = 50;
  await stack.kicked.json("POST", "/v1/channels/cost/messages", { data: "first" });
  const single = await counted(stack.redis, async () => {
    for (let i = 0; i < publishes; i++) {
      await stack.kicked.json("POST", "/v1/channels/cost/messages", { data: { i } });
    }
  });
  const messages = Array.from({ length: batchSize }, (_, i) => ({ data: { i } }));
  const batch = await counted(stack.redis, async () => {
    for (let i = 0; i < 10; i++) {
      await stack.kicked.json("POST", "/v1/channels/cost/messages", { messages });
    }
  });

  const idlePass: CostResult["idlePass"] = [];
  let created = 0;
  for (const target of [0, 100, 1000]) {
    const names: string[] = [];
    for (; created < target; created++) names.push(`idle${created}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(
        names.slice(i, i + 50).map((name) =>
          stack.manual.json("POST", "/v1/channels/idle/subscriptions", {
            name,
            url: "http://127.0.0.1:9/never-called",
          }),
        ),
      );
    }
    const pass = await counted(stack.redis, () => stack.manual.json("POST", "/v1/deliver"));
    idlePass.push({ subscriptions: target, commands: pass.commands });
  }
  return {
    publishCommands: round(single.commands / publishes, 2),
    batchPublishCommands: round(batch.commands / 10, 2),
    batchSize,
    idlePass,
  };
}
