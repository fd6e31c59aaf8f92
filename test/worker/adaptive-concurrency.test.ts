// Adaptive concurrency on the real stack: a push subscription's window of requests in flight
// (lua/take.ts: window) starts small, grows while requests succeed, is halved by congestion (429,
// 503, a timeout), never passes maxConcurrency, and settles near what an endpoint can take.

import { describe, expect, it } from "vitest";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { START_CONCURRENCY } from "../../shared/subscription.ts";
import { injectedDuring, nth, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, gate, settled } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { getSubscription, publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Passes run by hand (no kick): each is one invocation, at most six requests in flight. Retries
// come back within a second, so that what congestion refused is delivered within a test.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "adaptive",
  { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "100", RETRY_MAX_MS: "800" } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const messages = (count: number) => Array.from({ length: count }, (_, i) => ({ data: i }));
const current = async () => (await getSubscription(stack, channel, "sub")).currentConcurrency;
const deliverAll = (what: string, timeoutMs = 10_000) =>
  deliverUntil(stack, channel, () => settled(stack, channel, "sub"), what, { timeoutMs });

/**
 * An endpoint that takes at most `limit` requests at once, each for `delayMs`, and answers 429
 * (after the same time) to those above it; each request's arrival records how many were in
 * flight then, itself included.
 */
function limited(limit: number, delayMs: number) {
  let taking = 0;
  let inFlight = 0;
  const seen: number[] = [];
  receiver.respond(async () => {
    seen.push(++inFlight);
    const ok = taking < limit;
    if (ok) taking++;
    try {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      return { status: ok ? 204 : 429 };
    } finally {
      inFlight--;
      if (ok) taking--;
    }
  });
  return seen;
}

/** A subscription of batch size 1 whose window has grown to its maxConcurrency (8). */
async function grown() {
  await subscribe(stack, channel, {
    name: "sub",
    url: receiver.url,
    batchSize: 1,
    maxConcurrency: 8,
  });
  receiver.respond({ status: 204 });
  await publish(stack, channel, messages(8));
  await runPass(stack);
  await deliverAll("the warm-up");
  expect(await current()).toBe(8);
}

/**
 * A subscription at batch size 1 and maxConcurrency 16 to an endpoint that takes `k` requests at
 * once (limited), and `count` messages published to it: what the endpoint saw, and their ids.
 */
async function behindLimit(k: number, count: number) {
  await subscribe(stack, channel, {
    name: "sub",
    url: receiver.url,
    batchSize: 1,
    maxConcurrency: 16,
  });
  const seen = limited(k, 40);
  const ids = await publish(stack, channel, messages(count));
  return { seen, ids };
}

describe("a push subscription's window of requests in flight", () => {
  it("starts small and grows while requests succeed, up to maxConcurrency and never past it", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 1,
      maxConcurrency: 5,
    });
    expect(await current()).toBe(START_CONCURRENCY);
    const seen = limited(Infinity, 100);
    const ids = await publish(stack, channel, messages(30));
    await runPass(stack);
    await deliverAll("all delivered");
    expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
    // The first take has room for the start's requests only; successes let more go out.
    expect(Math.max(...seen.slice(0, START_CONCURRENCY))).toBeLessThanOrEqual(START_CONCURRENCY);
    expect(Math.max(...seen)).toBe(5);
    expect(receiver.maxInFlight()).toBe(5);
    expect(await current()).toBe(5);
  });

  it("is not a pull subscription's: its view shows none", async () => {
    await subscribe(stack, channel, { name: "sub", mode: "pull" });
    expect(await current()).toBeNull();
  });

  it.each<[string, { status: number }]>([
    ["a 429", { status: 429 }],
    ["a 503", { status: 503 }],
  ])("is halved by %s, and the rest go on: nothing lost", async (_, refusal) => {
    await grown();
    const before = receiver.requests.length;
    const held = gate();
    receiver.respond(async (req) => {
      if (req.n > before + 1) return { status: 204 };
      await held.opened;
      return refusal;
    });
    const [first] = await publish(stack, channel, messages(1));
    const pass = runPass(stack);
    await receiver.waitFor((r) => r.requests.length === before + 1);
    const more = await publish(stack, channel, messages(3));
    held.open();
    await pass;
    // No Retry-After: the window answers it, and the subscription does not back off: the same
    // run sends what was published meanwhile.
    expect(receiver.requests.slice(before).map((r) => r.status)).toEqual([
      refusal.status,
      204,
      204,
      204,
    ]);
    expect(await current()).toBe(4);
    await deliverAll("the refused one retried");
    expect(new Set(receiver.acceptedIds().slice(-4))).toEqual(new Set([first, ...more]));
  });

  it("follows maxConcurrency down at once, and grows again up to a higher one", async () => {
    await grown();
    const patch = (maxConcurrency: number) =>
      stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
        method: "PATCH",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ maxConcurrency }),
      });
    expect((await patch(3)).status).toBe(200);
    expect(await current()).toBe(3);
    const seen = limited(Infinity, 50);
    await publish(stack, channel, messages(12));
    await runPass(stack);
    await deliverAll("delivered at 3");
    expect(Math.max(...seen)).toBe(3);
    expect((await patch(10)).status).toBe(200);
    await publish(stack, channel, messages(20));
    await runPass(stack);
    await deliverAll("delivered as it grows");
    expect(await current()).toBe(10);
  });

  it("is halved by a timeout", async () => {
    await grown();
    await stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ timeoutMs: 500 }),
    });
    let slow = true;
    receiver.respond(() => (slow ? { status: 204, delayMs: 2000 } : { status: 204 }));
    const [id] = await publish(stack, channel, messages(1));
    await runPass(stack);
    expect(await current()).toBe(4);
    slow = false;
    await deliverAll("retried after the backoff");
    expect(receiver.acceptedIds()).toContain(id);
  });

  it("is halved once when the reply of the take that carried the 429 is lost", async () => {
    await grown();
    let refused = false;
    receiver.respond(() => {
      if (refused) return { status: 204 };
      refused = true;
      return { status: 429 };
    });
    // The run's first take reads the message; its last carries the 429, and is sent again.
    const match = nth(runsScript(TAKE_LUA, stack.keys.channel(channel)), 2);
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 1 });
    const [id] = await publish(stack, channel, messages(1));
    const injected = await injectedDuring(stack, () => runPass(stack));
    expect(injected["drop-reply"]).toBe(1);
    expect(await current()).toBe(4);
    await deliverAll("the refused one retried");
    expect(receiver.acceptedIds().at(-1)).toBe(id);
  });

  it("is halved once for a burst of refusals that one cut answers", async () => {
    await grown();
    // Every request of the burst is refused: they were all sent before the cut.
    receiver.respond(async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { status: 429 };
    });
    await publish(stack, channel, messages(6));
    await runPass(stack);
    expect(receiver.requests.filter((r) => r.status === 429)).toHaveLength(6);
    expect(await current()).toBe(4);
  });

  it("settles near what an endpoint takes at once, answering 429 above it, losing nothing", async () => {
    const K = 4;
    const { seen, ids } = await behindLimit(K, 200);
    await runPass(stack);
    await deliverAll("all delivered", 30_000);
    // Exactly once each, nothing dead-lettered.
    const accepted = receiver.acceptedIds();
    expect(accepted).toHaveLength(200);
    expect(new Set(accepted)).toEqual(new Set(ids));
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({ deadLetters: 0 });
    // Near K: refusals are a small share of the requests, and the requests go out about K at a
    // time: the most in flight at once in each round of requests (each arrival counts those in
    // flight with it, refused ones included) is K, give or take one, in most rounds.
    const refused = receiver.requests.filter((r) => r.status === 429).length;
    expect(refused / receiver.requests.length).toBeLessThan(0.2);
    const peaks = seen
      .filter((n, i) => i === seen.length - 1 || seen[i + 1]! <= n)
      .sort((a, b) => a - b);
    const median = peaks[Math.floor(peaks.length / 2)]!;
    expect(median).toBeGreaterThanOrEqual(K - 1);
    expect(median).toBeLessThanOrEqual(K + 1);
  }, 40_000);

  it("is shared by invocations delivering at once, and stays within its bounds", async () => {
    const K = 4;
    const { seen, ids } = await behindLimit(K, 150);
    await Promise.all([runPass(stack), runPass(stack), runPass(stack)]);
    await deliverAll("all delivered", 30_000);
    const accepted = receiver.acceptedIds();
    expect(accepted).toHaveLength(150);
    expect(new Set(accepted)).toEqual(new Set(ids));
    // Three deliverers at once, each with up to six requests: the one window keeps them near K
    // (slow start may pass it once, by up to as much again, before its first cut).
    const refused = receiver.requests.filter((r) => r.status === 429).length;
    expect(refused / receiver.requests.length).toBeLessThan(0.25);
    expect(Math.max(...seen)).toBeLessThanOrEqual(2 * K);
    const now = await current();
    expect(now).toBeGreaterThanOrEqual(1);
    expect(now).toBeLessThanOrEqual(16);
  }, 40_000);
});
