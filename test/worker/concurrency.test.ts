import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import {
  deliverUntil,
  gate,
  ledgerWritten,
  pendingIds,
  retryDueAt,
  settled,
  until,
  wakeDueAt,
} from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  getSubscription,
  groupOf,
  pendingCount,
  publish,
  runPass,
  subscribe,
} from "../helpers/subscriptions.ts";

// The kick is on (as in production); a short pass budget, so that a pass ends within a test.
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
const patch = (name: string, body: unknown) =>
  stack.api(`/v1/channels/${channel}/subscriptions/${name}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("the kick after a publish", () => {
  it("delivers to a healthy subscriber with no pass run by anyone", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const ids = await publish(stack, channel, [{ data: "hello" }]);
    await receiver.waitFor((r) => r.messages().length === 1, 5000);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    await until("the message is acked", async () => (await pending()) === 0);
  });

  it("delivers a message published during a delivery in the same visit, with no further pass", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const published = gate();
    receiver.respond(async (req) => {
      if (req.n === 1) await published.opened; // held until the second publish is done
      return { status: 204 };
    });
    const [first] = await publish(stack, channel, [{ data: "first" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    // The subscription is busy: this publish finds its wake member and kicks nobody; the
    // deliverer's last take, once its request ends, finds the message.
    const [second] = await publish(stack, channel, [{ data: "second" }]);
    published.open();
    await receiver.waitFor((r) => r.acceptedIds().length === 2, 5000);
    expect(receiver.acceptedIds()).toEqual([first, second]);
    expect(receiver.requests).toHaveLength(2);
    await until("both are acked", async () => (await pending()) === 0);
  });

  it("keeps what a dying deliverer took, and what was published meanwhile, due", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, timeoutMs: 500 });
    receiver.respond({ status: 204, delayMs: 60_000 }); // held until the Worker is killed
    const [first] = await publish(stack, channel, [{ data: "first" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    const [second] = await publish(stack, channel, [{ data: "second" }]);
    await stack.restartWorker(); // its deliverer dies with its request in flight
    expect(await pendingIds(stack, channel, "sub")).toEqual([first]);
    // The first is covered by the schedule: looked at again once its visibility runs out; the
    // second by the wake member the deliverer kept.
    expect(await retryDueAt(stack, channel, "sub")).not.toBeNull();
    expect(await wakeDueAt(stack, channel, "sub")).not.toBeNull();
    receiver.respond({ status: 204 });
    await deliverUntil(
      stack,
      channel,
      async () => new Set(receiver.acceptedIds()).size === 2 && (await pending()) === 0,
      "both delivered and acked",
      { timeoutMs: 10_000 },
    );
    expect(new Set(receiver.acceptedIds())).toEqual(new Set([first, second]));
  }, 20_000);

  it("wakes no paused subscriber, so its kick delivers nothing to it", async () => {
    const active = await startReceiver();
    try {
      await subscribe(stack, channel, { name: "paused", url: receiver.url });
      await subscribe(stack, channel, { name: "active", url: active.url });
      expect((await patch("paused", { paused: true })).status).toBe(200);
      const [id] = await publish(stack, channel, [{ data: 1 }]);
      // The kick ran: the active subscriber has the message.
      await active.waitFor((r) => r.acceptedIds().length === 1);
      expect(active.acceptedIds()).toEqual([id]);
      // Every visit the kick made is over: a kicked subscriber keeps its wake member and its
      // reader until its run ends.
      await until("the kick's visits are over", async () => {
        const quiet = await settled(stack, channel, "active");
        return quiet && (await wakeDueAt(stack, channel, "paused")) === null;
      });
      expect(receiver.requests).toEqual([]);
      const view = await getSubscription(stack, channel, "paused");
      expect(view).toMatchObject({ paused: true, lag: 1, pending: 0 });
    } finally {
      await active.close();
    }
  });
});

/** Publishes 60 messages, then runs three passes and the cron's at once; the ids. */
async function publishAndOverlap() {
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
  return ids;
}

describe("overlapping passes", () => {
  it("never send the same message twice, each request's messages in stream order", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 5 });
    const ids = await publishAndOverlap();
    // Every deliverer holds its reader while it sends: once no reader is left and nothing is
    // pending, any duplicate has been sent.
    await until("all delivered, nobody delivering", () => settled(stack, channel, "sub"));
    expect(receiver.requests.every((r) => r.status === 204)).toBe(true);
    expect([...countBy(receiver.messages().map((m) => m.id)).values()]).toEqual(ids.map(() => 1));
    for (const r of receiver.requests) {
      const batch = r.body!.messages.map((m) => m.id);
      expect(batch).toEqual(ids.filter((id) => batch.includes(id)));
    }
  });

  it("with maxConcurrency 1, have one request in flight at a time, in stream order", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 5,
      maxConcurrency: 1,
    });
    const ids = await publishAndOverlap();
    // A pass's budget is a second here: passes carry on where the last stopped.
    await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all delivered");
    expect(receiver.maxInFlight()).toBe(1);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
  });
});

describe("a deliverer that dies after the POST and before the ack", () => {
  it("leads to redelivery once its visibility timeout runs out, and not before", async () => {
    // visibility = 2 x timeoutMs + 5 s (worker/drive.ts)
    await subscribe(stack, channel, { name: "sub", url: receiver.url, timeoutMs: 1000 });
    receiver.respond({ status: 204, delayMs: 60_000 }); // held until the Worker is killed
    const [id] = await publish(stack, channel, [{ data: "once at least" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    const sentAt = receiver.requests[0]!.at;
    await stack.restartWorker(); // the Worker dies, the message unacked
    expect(await pendingIds(stack, channel, "sub")).toEqual([id]);
    receiver.respond({ status: 204 });

    await runPass(stack); // due (the retry member covers it), but its visibility holds it
    expect(receiver.requests).toHaveLength(1);

    await deliverUntil(
      stack,
      channel,
      async () => (await pending()) === 0,
      "redelivered and acked",
      { timeoutMs: 15_000 },
    );
    expect(receiver.messages().map((m) => [m.id, m.attempt])).toEqual([
      [id, 1],
      [id, 2],
    ]);
    expect(receiver.requests[1]!.at - sentAt).toBeGreaterThanOrEqual(2 * 1000 + 5000 - 100);
    // The first answer went to a dead Worker: only the second was heard.
    expect(receiver.requests[0]!.senderGone).toBe(true);
    expect(receiver.acceptedIds()).toEqual([id]);
  }, 25_000);
});

describe("a consumer group that vanished", () => {
  it("is recreated where the subscriber last acknowledged, not retried for ever", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const before = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await receiver.waitFor((r) => r.acceptedIds().length === 2);
    await until("both acked", async () => (await pending()) === 0);
    // lastAckedId is the isolate's ledger's to write, within a second of the run (worker/
    // ledger.ts): a group lost before then is recreated at the ack before, and what was acked
    // since comes again (at least once).
    await ledgerWritten(stack, channel, "sub");
    const group = await groupOf(stack, channel, "sub");
    await stack.redis.xgroup("DESTROY", stack.keys.channel(channel), group);

    const [after] = await publish(stack, channel, [{ data: 3 }]);
    await deliverUntil(
      stack,
      channel,
      async () => receiver.acceptedIds().length === 3 && (await pending()) === 0,
      "the third delivered and acked",
    );
    expect(receiver.acceptedIds()).toEqual([...before, after]);
    const groups = (await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual([group]);
  });
});

describe("a subscription that no longer exists", () => {
  it("has a leftover schedule entry dropped", async () => {
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
      for (const [i, r] of receivers.entries()) {
        // Passes carry on what a kick's budget (1 s here) left due on a busy machine.
        await deliverUntil(
          stack,
          channel,
          () => settled(stack, channel, `s${i}`),
          `s${i} has everything, nobody delivering`,
          { timeoutMs: 10_000 },
        );
        const sent = r.messages().map((m) => m.id);
        expect([...countBy(sent).values()].every((n) => n === 1)).toBe(true);
        expect(new Set(sent)).toEqual(new Set(ids));
        expect(new Set(r.acceptedIds())).toEqual(new Set(ids));
      }
    } finally {
      for (const r of receivers.slice(1)) await r.close();
    }
  });
});
