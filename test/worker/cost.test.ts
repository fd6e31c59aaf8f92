import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LATENCY_LE } from "../../shared/counters.ts";
import { loadScripts } from "../helpers/faults.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Upstash bills every command, those inside Lua scripts included: these count Redis' own
// commandstats around one step. No kick, so each step is exactly what it says.
let stack: Stack;
let receiver: TestReceiver;
beforeAll(async () => {
  // No trim comes due in these (lua/trim.ts), and no event is published (a failure raises one):
  // each counts exactly what it names. The scripts are loaded, so each call is one EVALSHA.
  stack = await startStack({
    vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "3600000", EVENTS_CHANNEL: "none" },
  });
  receiver = await startReceiver();
  await loadScripts(stack);
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
    // About 46: 22 to read, send and close as before (0.011 per message here, 0.005 with the
    // benchmark's longer backlog), 20 XADD (one per request) and a few HINCRBY for the drain.
    expect(counted.byCommand.xadd).toBe(20);
    expect(counted.byCommand.hincrby).toBeLessThanOrEqual(2 + LATENCY_LE.length);
    expect(counted.total / 2000).toBeLessThanOrEqual(0.05);
  });

  it("costs at most 3 commands per message at batch size 1", async () => {
    await subscribe(stack, "batch1", { name: "sub", url: receiver.url, batchSize: 1 });
    await publishMany("batch1", 200);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(200);
    });
    // About 319: 112 as before (0.56 per message: a read of 4 and its acks), 200 XADD (one per
    // request: +1 per message at batch size 1), a few HINCRBY once for the drain: 1.6.
    expect(counted.byCommand.xadd).toBe(200);
    expect(counted.byCommand.hincrby).toBeLessThanOrEqual(2 + LATENCY_LE.length);
    expect(counted.total / 200).toBeLessThanOrEqual(3);
  });
});

// What the attempt log and the counters cost on top of a delivery: 1 XADD per webhook request
// (its record, riding in the next round trip) and, once per drain, 1 HINCRBY per counter that
// moved (lua/attempt-writes.ts). Messages published in one request share their publish
// millisecond, and one POST answers them all at once: one latency, one bucket.
describe("delivery with its attempt log and counters", () => {
  it("costs 18 for a batch of 100 in one request: 14 as before, +1 XADD, +3 HINCRBY", async () => {
    await subscribe(stack, "one100", { name: "sub", url: receiver.url, batchSize: 100 });
    await publishMany("one100", 100);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(100);
    });
    expect(counted.byCommand).toEqual({
      // The pass: what is due, the subscription, its schedule, its lease, its pending list.
      zrange: 1,
      hmget: 1,
      zmscore: 1,
      set: 1,
      xpending: 1,
      // A read of one batch's worth (100: the size of a message is not known yet), a read ahead
      // that finds nothing, and the close's read.
      xreadgroup: 3,
      // The close: its acks, the lease's compare, the state, let go.
      evalsha: 1,
      xack: 1,
      get: 1,
      hset: 1,
      zrem: 1,
      del: 1,
      // The request's record, and its counters: success, its latency bucket, the latency sum.
      xadd: 1,
      hincrby: 3,
    });
  });

  it("costs 16 for a failed request: 14 as before, +1 XADD, +1 HINCRBY", async () => {
    const failing = await startReceiver();
    try {
      failing.respond({ status: 500 });
      await subscribe(stack, "fails", { name: "sub", url: failing.url });
      await publishMany("fails", 10);
      const counted = await countCommands(stack.redis, async () => {
        expect((await runPass(stack)).delivered).toBe(0);
      });
      expect(counted.byCommand).toEqual({
        zrange: 1,
        hmget: 1,
        zmscore: 1,
        set: 1,
        xpending: 1,
        xreadgroup: 1,
        // The finish: the lease's compare, the backoff (wake and retry), the failure count and
        // failingSince (its first failure), the state, let go.
        evalsha: 1,
        get: 1,
        zadd: 2,
        hset: 2,
        del: 1,
        // The failure count's HINCRBY, and the counter of 5xx answers; the request's record.
        hincrby: 2,
        xadd: 1,
      });
    } finally {
      await failing.close();
    }
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
