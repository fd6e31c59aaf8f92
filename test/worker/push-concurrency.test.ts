// Concurrent push on the real stack: a subscription has up to maxConcurrency requests in flight,
// counted over every invocation delivering it; one invocation keeps at most six connections open
// (Cloudflare's limit), its Redis requests and webhook POSTs together, counted where they arrive.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { gauge } from "../helpers/gauge.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled, until } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, publish, runPass, subscribe } from "../helpers/subscriptions.ts";

const connections = gauge();
let stack: Stack;
let receiver: TestReceiver;
let channel = "";
let n = 0;

describe("a subscription's requests in flight", () => {
  // Passes run by hand: each is one invocation, and nothing else runs meanwhile.
  beforeAllStack({ KICK_ON_PUBLISH: "false" });

  it("go out side by side, never more than maxConcurrency", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 1,
      maxConcurrency: 3,
    });
    receiver.respond({ status: 204, delayMs: 200 });
    const ids = await publish(stack, channel, messages(12));
    await runPass(stack);
    await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all delivered");
    expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
    expect(receiver.maxInFlight()).toBe(3);
  });

  it.each([1, 3])(
    "deliver a whole backlog in one pass with maxConcurrency %i, the slots refilled as requests end",
    async (maxConcurrency) => {
      await subscribe(stack, channel, {
        name: "sub",
        url: receiver.url,
        batchSize: 1,
        maxConcurrency,
      });
      receiver.respond({ status: 204, delayMs: 50 });
      const ids = await publish(stack, channel, messages(9));
      const summary = await runPass(stack);
      expect(summary.delivered).toBe(9);
      expect(receiver.acceptedIds()).toHaveLength(9);
      expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
      expect(receiver.maxInFlight()).toBe(maxConcurrency);
    },
  );

  it("hold at most six connections in one invocation, Redis and webhooks together", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    receiver.respond({ status: 204, delayMs: 300 });
    const ids = await publish(stack, channel, messages(40));
    connections.reset();
    await runPass(stack);
    expect(connections.most).toBeLessThanOrEqual(6);
    // Six webhook requests at once: Redis takes the first connection one gives back.
    expect(receiver.maxInFlight()).toBe(6);
    await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all delivered");
    expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
  });

  it("come from more invocations past six, and still never more than maxConcurrency", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 1,
      maxConcurrency: 8,
    });
    // Its window starts small and grows as requests succeed (adaptive concurrency): three
    // invocations started on a new subscription find room for one's requests only. Grown first.
    receiver.respond({ status: 204 });
    await publish(stack, channel, messages(12));
    await runPass(stack);
    await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "the warm-up");
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({ currentConcurrency: 8 });
    receiver.respond({ status: 204, delayMs: 300 });
    const before = receiver.acceptedIds().length;
    const ids = await publish(stack, channel, messages(60));
    // Three invocations at once, each with at most six requests in flight.
    await Promise.all([runPass(stack), runPass(stack), runPass(stack)]);
    await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all delivered");
    expect(receiver.maxInFlight()).toBeGreaterThan(6);
    expect(receiver.maxInFlight()).toBeLessThanOrEqual(8);
    expect(new Set(receiver.acceptedIds().slice(before))).toEqual(new Set(ids));
    expect(receiver.acceptedIds()).toHaveLength(before + 60);
  });
});

describe("a backlog that lasts while messages keep coming", () => {
  // As deployed: every publish kicks, and one that finds its subscriber's deliverers busy for a
  // second joins them.
  beforeAllStack({});

  it("is joined by the publishes' invocations: more requests in flight than one invocation holds", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    receiver.respond({ status: 204, delayMs: 200 });
    const ids: string[] = [];
    // 50 a second for 3 s, one per publish: 10 requests in flight keep up.
    for (let i = 0; i < 150; i++) {
      ids.push(...(await publish(stack, channel, [{ data: i }])));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await until("all delivered", async () => new Set(receiver.acceptedIds()).size === 150, 20_000);
    expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
    expect(receiver.maxInFlight()).toBeGreaterThan(6);
  }, 40_000);
});

function messages(count: number) {
  return Array.from({ length: count }, (_, i) => ({ data: i }));
}

/** One stack for the describe, with the gauge on its bridge and a fresh receiver per test. */
function beforeAllStack(vars: Record<string, string>) {
  beforeAll(async () => {
    stack = await startStack({ vars, bridge: { gauge: connections } });
  });
  afterAll(() => stack?.stop());
  beforeEach(async () => {
    receiver = await startReceiver({ gauge: connections });
    channel = `concurrent-${++n}`;
  });
  afterEach(() => receiver?.close());
}
