import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { UNSCHEDULE_LUA } from "../../shared/lua/unschedule.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  dueAt,
  groupOf,
  pendingCount,
  publish,
  runPass,
  subscribe,
  waitUntil,
} from "../helpers/subscriptions.ts";

// One deliverer per subscription at a time, and a deliverer that is no longer the one (its lease
// gone, its subscription deleted and made again) touches nothing of its successor's.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "leases",
  { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "150", RETRY_MAX_MS: "300" } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const sha1 = (source: string) => createHash("sha1").update(source).digest("hex");
const patch = (body: unknown) =>
  stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

describe("a deliverer whose lease was taken over", () => {
  it("releases nothing of the new holder's, and reads nothing more", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const lease = stack.keys.lease(channel, "sub");
    receiver.respond(async (req) => {
      if (req.n === 1) {
        // While this POST is held: the lease expires and another deliverer takes it, and a
        // message arrives that the old deliverer must leave to the new holder.
        await stack.redis.set(lease, "the-next-deliverer", "PX", 60_000);
        await publish(stack, channel, [{ data: "second" }]);
      }
      return { status: 204 };
    });
    const [first] = await publish(stack, channel, [{ data: "first" }]);
    await runPass(stack);
    expect(await stack.redis.get(lease)).toBe("the-next-deliverer");
    expect(receiver.messages().map((m) => m.id)).toEqual([first]);
    // What the endpoint accepted was acked all the same.
    expect(await pendingCount(stack, channel, "sub")).toBe(0);
  });
});

describe("a claim for a retry", () => {
  it("takes only messages still idle for their backoff, never one just sent by another", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    receiver.respond({ status: 500 });
    const [id] = await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    receiver.respond({ status: 204 });
    await waitUntil((await dueAt(stack, `retry:${channel}/sub`))!);

    // Between this pass's look at the pending list and its XCLAIM, another deliverer sends the
    // message again (its idle time starts over): the claim must leave it to that deliverer.
    const group = await groupOf(stack, channel, "sub");
    const remove = stack.bridge.faults.add({
      kind: "delay",
      delayMs: 40, // far less than the backoff the claim asks the message to have been idle
      times: 1,
      match: (commands) => {
        const claim = commands.some((c) => c.name.toUpperCase() === "XCLAIM");
        if (claim) void stack.redis.xclaim(stack.keys.channel(channel), group, "other", 0, id!);
        return claim;
      },
    });
    await runPass(stack);
    remove();
    expect(receiver.requests).toHaveLength(1);
    expect(await pendingCount(stack, channel, "sub")).toBe(1);

    // Once it has been idle for its backoff again (the other deliverer's send counted: 2), it is
    // claimed and sent, as attempt 3.
    await deliverUntil(
      stack,
      channel,
      async () => receiver.requests.length === 2,
      "the retry sent",
    );
    expect(receiver.messages().map((m) => [m.id, m.attempt])).toEqual([
      [id, 1],
      [id, 3],
    ]);
  });
});

describe("a subscription deleted and made again while a deliverer works on it", () => {
  it("never has the old deliverer read its messages, nor post them to the old URL", async () => {
    const next = await startReceiver();
    try {
      await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
      receiver.respond(async (req) => {
        if (req.n === 1) {
          const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
            method: "DELETE",
          });
          expect(res.status).toBe(204);
          // Another deliverer holds the new subscription's lease for now, so only the old one
          // could read its group, and must not.
          await stack.redis.set(stack.keys.lease(channel, "sub"), "another", "PX", 60_000);
          await subscribe(stack, channel, { name: "sub", url: next.url, from: "earliest" });
          await publish(stack, channel, [{ data: "after" }]);
        }
        return { status: 204 };
      });
      // More than one read's worth: the old deliverer reads again after the delete.
      const before = await publish(
        stack,
        channel,
        Array.from({ length: 12 }, (_, i) => ({ data: i })),
      );
      await runPass(stack);
      await stack.redis.del(stack.keys.lease(channel, "sub"));
      await runPass(stack);
      await next.waitFor((r) => r.messages().length >= 13);
      // The old deliverer sent some of what it had read before the delete, each once, and
      // nothing of the new subscription's.
      const old = receiver.messages().map((m) => m.id);
      expect(new Set(old).size).toBe(old.length);
      expect(old.every((id) => before.includes(id))).toBe(true);
      expect(next.messages().map((m) => m.data)).toEqual([
        ...Array.from({ length: 12 }, (_, i) => i),
        "after",
      ]);
    } finally {
      await next.close();
    }
  });
});

describe("a resume that lands while a pass drops a paused subscription's schedule", () => {
  it("keeps the wake-up the resume made", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect((await patch({ paused: true })).status).toBe(200);
    await publish(stack, channel, [{ data: 1 }]);
    // A schedule entry left over for the paused subscription: the pass drops it...
    await stack.redis.zadd(stack.keys.due(), Date.now(), `wake:${channel}/sub`);
    // (Another deliverer holds the lease, so the delivery the resume starts at once waits: the
    // wake member is then the only thing that brings the message.)
    const lease = stack.keys.lease(channel, "sub");
    await stack.redis.set(lease, "another-deliverer", "PX", 60_000);
    const unschedule = sha1(UNSCHEDULE_LUA);
    let resumed: Promise<Response> | undefined;
    const remove = stack.bridge.faults.add({
      kind: "delay",
      delayMs: 300,
      times: 1,
      match: (commands) => {
        const hit = commands.some((c) => c.args.some((a) => a.toString() === unschedule));
        // ...and just then, the subscription is resumed (which wakes it).
        if (hit) resumed = patch({ paused: false });
        return hit;
      },
    });
    await runPass(stack);
    remove();
    expect((await resumed)?.status).toBe(200);
    expect(await dueAt(stack, `wake:${channel}/sub`)).not.toBeNull();
    await stack.redis.del(lease);
    await runPass(stack);
    expect(receiver.messages().map((m) => m.data)).toEqual([1]);
  });
});

describe("a read ahead that fails", () => {
  it("lets every POST of the batches in hand finish before the lease goes", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    receiver.respond({ status: 204, delayMs: 150 });
    await publish(
      stack,
      channel,
      [1, 2, 3, 4, 5, 6].map((data) => ({ data })),
    );
    let reads = 0;
    const remove = stack.bridge.faults.add({
      kind: "unavailable",
      times: 1,
      // The first read takes 4 batches; the second, sent while those are POSTed, fails.
      match: (commands) =>
        commands.some((c) => c.name.toUpperCase() === "XREADGROUP") && ++reads === 2,
    });
    await runPass(stack);
    const passEnded = Date.now();
    remove();
    // The four batches in hand all went out and were answered, before the visit let go.
    expect(receiver.requests.map((r) => [r.status, r.senderGone])).toEqual(
      Array.from({ length: 4 }, () => [204, false]),
    );
    expect(Math.max(...receiver.requests.map((r) => r.at))).toBeLessThan(passEnded);
  });
});

describe("a channel with thousands of subscribers", () => {
  it("wakes them all on a publish (no Lua stack overflow)", async () => {
    const subs = stack.keys.subscriptions(channel);
    const json = JSON.stringify({
      url: receiver.url,
      batchSize: 10,
      maxAttempts: 1,
      types: null,
      timeoutMs: 1000,
      secrets: [],
      createdAt: new Date().toISOString(),
    });
    const fields = Array.from({ length: 4500 }, (_, i) => [`s${i}`, json]).flat();
    await stack.redis.hset(subs, ...fields);
    const res = await stack.post(`/v1/channels/${channel}/messages`, { data: 1 });
    expect(res.status).toBe(201);
    const woken = await stack.redis.zrangebyscore(stack.keys.due(), "-inf", "+inf");
    expect(woken.filter((m) => m.startsWith(`wake:${channel}/`))).toHaveLength(4500);
    await stack.redis.zremrangebyscore(stack.keys.due(), "-inf", "+inf");
    await stack.redis.del(subs);
  });
});

describe("a visit that works longer than its lease", () => {
  it("renews it as it goes, so every batch starts with a batch's time left on it", async () => {
    // timeoutMs 1500: the lease lasts 1.5 s + 5 s margin + 3 s window, and each POST takes 1 s.
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 1,
      timeoutMs: 1500,
    });
    const lease = stack.keys.lease(channel, "sub");
    const left: number[] = [];
    receiver.respond(async () => {
      left.push(await stack.redis.pttl(lease));
      return { status: 204, delayMs: 1000 };
    });
    await publish(
      stack,
      channel,
      Array.from({ length: 6 }, (_, i) => ({ data: i })),
    );
    await runPass(stack);
    expect(receiver.messages()).toHaveLength(6);
    // Without renewals, the fifth POST would start with 9.5 - 4 = 5.5 s left: less than one batch
    // plus the margin. Renewed, none starts with less.
    expect(Math.min(...left)).toBeGreaterThanOrEqual(1500 + 5000 - 300);
    expect(await stack.redis.exists(lease)).toBe(0);
  }, 20_000);
});
