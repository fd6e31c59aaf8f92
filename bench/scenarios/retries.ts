// 5. Retries: delivery while the receivers fail 30% of requests (500), with a short retry
// schedule (the bench's RETRY_BASE_MS) so it ends within the run. Reports messages/s, commands per
// delivered message against the healthy run of the same shape, and the accounting: every message
// acknowledged by its subscriber or in its dead-letter stream, none missing.

import { counted, round } from "../measure.ts";
import type { BenchStack } from "../stack.ts";

export interface RetriesResult {
  subscriptions: number;
  backlog: number;
  failureRate: number;
  perSecond: number;
  passes: number;
  commandsPerMessage: number;
  deadLettered: number;
  missing: number;
}

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

export async function retriesScenario(
  stack: BenchStack,
  options: { subscriptions: number; backlog: number; batchSize: number; failureRate: number },
): Promise<RetriesResult> {
  const channel = "retries";
  const names: string[] = [];
  for (let i = 0; i < options.subscriptions; i++) {
    const url = stack.receivers.add(`${channel}-s${i}`, SECRET);
    names.push(`s${i}`);
    await stack.manual.json("POST", `/v1/channels/${channel}/subscriptions`, {
      name: `s${i}`,
      url,
      batchSize: options.batchSize,
      maxAttempts: 5,
      secret: SECRET,
    });
  }
  for (let i = 0; i < options.backlog; i += 1000) {
    const messages = Array.from({ length: Math.min(1000, options.backlog - i) }, (_, j) => ({
      data: { n: i + j },
    }));
    await stack.manual.json("POST", `/v1/channels/${channel}/messages`, { messages });
  }
  const dead = async () => {
    let sum = 0;
    for (const name of names) sum += await stack.redis.xlen(stack.keys.deadLetters(channel, name));
    return sum;
  };
  const received = () =>
    names.reduce((sum, name) => sum + stack.receivers.received(`${channel}-${name}`), 0);
  const total = options.subscriptions * options.backlog;

  stack.receivers.setFailureRate(options.failureRate);
  let passes = 0;
  const started = performance.now();
  const { commands } = await counted(stack.redis, async () => {
    while (received() + (await dead()) < total) {
      await stack.manual.json("POST", "/v1/deliver");
      passes++;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  });
  const seconds = (performance.now() - started) / 1000;
  stack.receivers.setFailureRate(0);
  const deadLettered = await dead();
  return {
    subscriptions: options.subscriptions,
    backlog: options.backlog,
    failureRate: options.failureRate,
    perSecond: round(received() / seconds, 0),
    passes,
    commandsPerMessage: round(commands / total, 4),
    deadLettered,
    missing: total - received() - deadLettered,
  };
}
