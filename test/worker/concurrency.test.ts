import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  groupOf,
  pendingCount,
  publish,
  runPass,
  sleep,
  subscribe,
} from "../helpers/subscriptions.ts";

// The kick is on (as in production); a short pass budget keeps leases short (budget + the
// subscription's timeout + 5 s), so a dead pass's lease expires within the test.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "concurrency",
  {
    vars: { RETRY_BASE_MS: "100", RETRY_MAX_MS: "500", PASS_BUDGET_MS: "1000" },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const pending = () => pendingCount(stack, channel, "sub");
const countBy = (ids: string[]) =>
  ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());

describe("the kick after a publish", () => {
  it("delivers to a healthy subscriber with no pass run by anyone", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const ids = await publish(stack, channel, [{ data: "hello" }]);
    await receiver.waitFor((r) => r.messages().length === 1, 5000);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
  });

  it("delivers a message published during a delivery in the same visit, with no further pass", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    receiver.respond((req) => (req.n === 1 ? { status: 204, delayMs: 600 } : { status: 204 }));
    const [first] = await publish(stack, channel, [{ data: "first" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    // The subscription is busy: this publish finds its wake member and kicks nobody.
    const [second] = await publish(stack, channel, [{ data: "second" }]);
    await receiver.waitFor((r) => r.acceptedIds().length === 2, 5000);
    expect(receiver.acceptedIds()).toEqual([first, second]);
    expect(receiver.requests).toHaveLength(2);
  });
});

describe("overlapping passes", () => {
  it("never send the same message twice nor out of order", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 5 });
    receiver.respond({ status: 204, delayMs: 30 });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 60 }, (_, i) => ({ data: i })),
    );
    const worker = stack.harness.getWorker();
    await Promise.all([
      runPass(stack),
      runPass(stack),
      worker.scheduled({ cron: "* * * * *" }),
      runPass(stack),
    ]);
    await receiver.waitFor((r) => r.acceptedIds().length === 60, 10_000);
    await sleep(200);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
  });
});

describe("a pass that dies after the POST and before the XACK", () => {
  it("leads to redelivery once its lease expires", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, timeoutMs: 1000 });
    receiver.respond({ status: 204, delayMs: 800 });
    const [id] = await publish(stack, channel, [{ data: "once at least" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    await stack.restartWorker(); // the Worker dies holding the lease, the message unacked
    expect(await pending()).toBe(1);
    receiver.respond({ status: 204 });

    await sleep(7500); // lease: 1 s budget + 1 s timeout + 5 s margin
    await runPass(stack); // finds the orphaned pending entry and schedules its retry
    await runPass(stack);
    await receiver.waitFor((r) => r.requests.length === 2);
    expect(receiver.messages().map((m) => [m.id, m.attempt])).toEqual([
      [id, 1],
      [id, 2],
    ]);
    expect(await pending()).toBe(0);
  }, 20_000);
});

describe("a consumer group that vanished", () => {
  it("is recreated where the subscriber last acknowledged, not retried for ever", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const before = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await receiver.waitFor((r) => r.acceptedIds().length === 2);
    const group = await groupOf(stack, channel, "sub");
    await stack.redis.xgroup("DESTROY", stack.keys.channel(channel), group);

    const [after] = await publish(stack, channel, [{ data: 3 }]);
    await runPass(stack);
    await runPass(stack);
    await receiver.waitFor((r) => r.acceptedIds().length === 3);
    expect(receiver.acceptedIds()).toEqual([...before, after]);
    const groups = (await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([group]);
  });
});

describe("a subscription deleted while it is being delivered", () => {
  it("has its work dropped cleanly: no error, no group recreated, nothing scheduled", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    receiver.respond({ status: 204, delayMs: 500 });
    await publish(stack, channel, [{ data: 1 }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub`, { method: "DELETE" });
    expect(res.status).toBe(204);
    await sleep(800);

    const summary = await runPass(stack);
    expect(summary.subscriptions.filter((s) => s.channel === channel)).toEqual([]);
    expect(await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))).toEqual([]);
    const due = await stack.redis.zrange(stack.keys.due(), "0", "-1");
    expect(due.filter((m) => m.includes(`${channel}/`))).toEqual([]);
  });

  it("drops a leftover schedule entry for a subscription that no longer exists", async () => {
    await stack.redis.zadd(stack.keys.due(), String(Date.now()), `wake:${channel}/ghost`);
    const summary = await runPass(stack);
    expect(summary.subscriptions.find((s) => s.subscription === "ghost")).toBeUndefined();
    expect(await stack.redis.zscore(stack.keys.due(), `wake:${channel}/ghost`)).toBeNull();
  });
});

describe("at-least-once, counted", () => {
  it("delivers every message of a burst exactly once to each of several subscribers", async () => {
    const receivers = [receiver, await startReceiver(), await startReceiver()];
    try {
      for (const [i, r] of receivers.entries()) {
        await subscribe(stack, channel, { name: `s${i}`, url: r.url, batchSize: 7 });
      }
      const ids = (
        await Promise.all(
          Array.from({ length: 10 }, (_, i) =>
            publish(stack, channel, [{ data: i }, { data: i + 0.5 }]),
          ),
        )
      ).flat();
      await runPass(stack);
      for (const r of receivers) {
        await r.waitFor((x) => x.acceptedIds().length === ids.length, 10_000);
        expect([...countBy(r.acceptedIds()).values()].every((n) => n === 1)).toBe(true);
        expect(new Set(r.acceptedIds())).toEqual(new Set(ids));
      }
    } finally {
      for (const r of receivers.slice(1)) await r.close();
    }
  });
});
