import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Upstash bills every command, those inside Lua scripts included: these count Redis' own
// commandstats around one step. No kick, so each step is exactly what it says.
let stack: Stack;
let receiver: TestReceiver;
beforeAll(async () => {
  // No trim comes due in these (lua/trim.ts): each counts exactly what it names.
  stack = await startStack({ vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "3600000" } });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

async function subscribeMany(channel: string, from: number, to: number) {
  const names = Array.from({ length: to - from }, (_, i) => `s${from + i}`);
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(
      names.slice(i, i + 50).map((name) => subscribe(stack, channel, { name, url: receiver.url })),
    );
  }
}

async function publishMany(channel: string, count: number) {
  for (let i = 0; i < count; i += 1000) {
    const n = Math.min(1000, count - i);
    await publish(
      stack,
      channel,
      Array.from({ length: n }, (_, j) => ({ data: { n: i + j } })),
    );
  }
}

describe("an idle pass", () => {
  it("costs the same one command with 10 and with 1,000 subscriptions", async () => {
    await subscribeMany("idle", 0, 10);
    const with10 = await countCommands(stack.redis, () => runPass(stack));
    await subscribeMany("idle", 10, 1000);
    const with1000 = await countCommands(stack.redis, () => runPass(stack));
    expect(with10.byCommand).toEqual({ zrange: 1 });
    expect(with1000).toEqual(with10);
  }, 60_000);
});

describe("delivery", () => {
  it("costs at most 0.05 commands per message at batch size 100", async () => {
    await subscribe(stack, "batch100", { name: "sub", url: receiver.url, batchSize: 100 });
    await publishMany("batch100", 2000);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(2000);
    });
    expect(counted.total / 2000).toBeLessThanOrEqual(0.05);
  });

  it("costs at most 3 commands per message at batch size 1", async () => {
    await subscribe(stack, "batch1", { name: "sub", url: receiver.url, batchSize: 1 });
    await publishMany("batch1", 200);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(200);
    });
    expect(counted.total / 200).toBeLessThanOrEqual(3);
  });
});

describe("publishing to a channel with an idle subscriber", () => {
  it("costs 5 commands: the script, XADD, HGETALL, and ZMSCORE + ZADD to wake it", async () => {
    await subscribe(stack, "wakes", { name: "sub", url: receiver.url });
    const counted = await countCommands(stack.redis, () => publish(stack, "wakes", [{ data: 1 }]));
    expect(counted.byCommand).toEqual({ evalsha: 1, xadd: 1, hgetall: 1, zmscore: 1, zadd: 1 });
  });

  it("costs 4 once it is already woken: nothing to add to the schedule", async () => {
    await subscribe(stack, "woken", { name: "sub", url: receiver.url });
    await publish(stack, "woken", [{ data: 1 }]);
    const counted = await countCommands(stack.redis, () => publish(stack, "woken", [{ data: 2 }]));
    expect(counted.byCommand).toEqual({ evalsha: 1, xadd: 1, hgetall: 1, zmscore: 1 });
  });
});
