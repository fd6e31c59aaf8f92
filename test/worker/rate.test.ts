// maxRequestsPerSecond on the real stack: the setting through the API, and the request start
// times a real receiver sees. Passes run by hand; the budget is short so that a paced backlog
// takes more than one pass, and pacing must carry from one visit to the next.

import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, timedPass } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { getSubscription, publish, subscribe } from "../helpers/subscriptions.ts";

const BUDGET_MS = 2_500;
// The receiver stamps a request when its body has arrived; the Worker's fetch reaches it through
// the test process, so two starts a full interval apart may land this much closer. On a loaded
// 2-core machine one start arrived 39 ms after its slot while the next was on time (CI with
// another suite running): 50 ms, still a quarter of the 200 ms interval.
const JITTER_MS = 50;

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "rate",
  { vars: { KICK_ON_PUBLISH: "false", PASS_BUDGET_MS: String(BUDGET_MS) } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const path = (rest = "") => `/v1/channels/${channel}/subscriptions${rest}`;
const patch = (body: unknown) =>
  stack.api(path("/sub"), {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

async function subscribeReceiver(body: Record<string, unknown>) {
  const sub = await subscribe(stack, channel, { name: "sub", url: receiver.url, ...body });
  receiver.setSecret(sub.secret);
  return sub;
}

/** Publishes `n` messages and delivers them all, pass after pass; returns their ids. */
async function deliverAll(n: number) {
  const ids = await publish(
    stack,
    channel,
    Array.from({ length: n }, (_, i) => ({ data: { i } })),
  );
  const sent = () => ids.every((id) => receiver.acceptedIds().includes(id));
  await deliverUntil(stack, channel, sent, `all ${n} sent`, { timeoutMs: 10_000 });
  return ids;
}

/** The most request starts the receiver saw within any one second (less the jitter). */
function mostInOneSecond(starts: number[]): number {
  let most = 0;
  for (const [i, t] of starts.entries()) {
    most = Math.max(most, starts.filter((u, j) => j >= i && u < t + 1000 - JITTER_MS).length);
  }
  return most;
}

const starts = () => receiver.requests.map((r) => r.at);

describe("a subscription with maxRequestsPerSecond", () => {
  it("never has more than that many requests start in any second, and delivers all in order", async () => {
    await subscribeReceiver({ batchSize: 1, maxRequestsPerSecond: 5 });
    const ids = await deliverAll(20);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    expect(mostInOneSecond(starts()), `starts: ${starts()}`).toBe(5);
    // 19 intervals of 200 ms: the backlog is spread out, not sent at once and then counted.
    expect(starts().at(-1)! - starts()[0]!).toBeGreaterThanOrEqual(3_000);
  });

  it("sends the same backlog much faster without the setting", async () => {
    await subscribeReceiver({ batchSize: 1 });
    await deliverAll(20);
    expect(mostInOneSecond(starts()), `starts: ${starts()}`).toBeGreaterThan(5);
  });

  it("keeps the pace from one visit to the next", async () => {
    await subscribeReceiver({ batchSize: 1, maxRequestsPerSecond: 2 });
    await deliverAll(1);
    await deliverAll(1);
    expect(starts()).toHaveLength(2);
    expect(starts()[1]! - starts()[0]!).toBeGreaterThanOrEqual(500 - JITTER_MS);
  });

  it("waits for no slot past the pass's budget, and leaves the rest for the next pass", async () => {
    await subscribeReceiver({ batchSize: 1, maxRequestsPerSecond: 1 });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 5 }, (_, i) => ({ data: { i } })),
    );
    const pass = await timedPass(stack);
    const sent = starts();
    // One a second from the first: the pass fits 2 or 3 in its 2.5 s, and ends before the next
    // slot rather than wait for it.
    expect(pass.delivered).toBe(sent.length);
    expect(sent.length).toBeLessThan(ids.length);
    expect(Math.max(...sent)).toBeLessThan(pass.startedAt + BUDGET_MS);
    expect(pass.endedAt).toBeLessThan(sent.at(-1)! + 1000);
  });
});

describe("the maxRequestsPerSecond setting", () => {
  it("is null (unlimited) unless given, and shown in the view and the list", async () => {
    const created = await subscribeReceiver({});
    expect(created.maxRequestsPerSecond).toBeNull();
    await subscribe(stack, channel, { name: "paced", url: receiver.url, maxRequestsPerSecond: 50 });
    expect((await getSubscription(stack, channel, "paced")).maxRequestsPerSecond).toBe(50);
    const { subscriptions } = (await (await stack.api(path())).json()) as {
      subscriptions: { name: string; maxRequestsPerSecond: number | null }[];
    };
    expect(subscriptions.map((s) => [s.name, s.maxRequestsPerSecond])).toEqual([
      ["paced", 50],
      ["sub", null],
    ]);
  });

  it("is changed by PATCH, and cleared with null", async () => {
    await subscribeReceiver({ maxRequestsPerSecond: 10 });
    const res = await patch({ maxRequestsPerSecond: 10_000 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Record<string, unknown>).maxRequestsPerSecond).toBe(10_000);
    await patch({ batchSize: 5 });
    expect((await getSubscription(stack, channel, "sub")).maxRequestsPerSecond).toBe(10_000);
    await patch({ maxRequestsPerSecond: null });
    expect((await getSubscription(stack, channel, "sub")).maxRequestsPerSecond).toBeNull();
  });

  it.each([[0], [10_001], [2.5], [-1], ["5"], [true]])(
    "400s on %j, on create and on PATCH, and writes nothing",
    async (value) => {
      const created = await stack.post(path(), {
        name: "sub",
        url: receiver.url,
        maxRequestsPerSecond: value,
      });
      await expectInvalid(created);
      expect(await stack.redis.exists(stack.keys.subscriptions(channel))).toBe(0);
      await subscribeReceiver({ maxRequestsPerSecond: 7 });
      const before = await stack.redis.hgetall(stack.keys.subscriptions(channel));
      await expectInvalid(await patch({ maxRequestsPerSecond: value }));
      expect(await stack.redis.hgetall(stack.keys.subscriptions(channel))).toEqual(before);
    },
  );
});

async function expectInvalid(res: Response) {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("invalid_request");
  expect(error.message).toContain("body.maxRequestsPerSecond");
}
