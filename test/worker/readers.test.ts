import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { WAITING_ROOM } from "../../shared/engine/queue.ts";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { UNSCHEDULE_LUA } from "../../shared/lua/unschedule.ts";
import { START_CONCURRENCY } from "../../shared/subscription.ts";
import { loadScripts, nth, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, retryDueAt, settled } from "../helpers/schedule.ts";
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

// What one reader of a subscription's group holds is its own until it settles it or its
// visibility timeout runs out; a reader of a subscription that is gone touches nothing of its
// successor's.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "readers",
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
/** Another reader has just taken `id` for itself, as a live deliverer would (lua/take.ts: a
 * push reader's entry is visible again once its idle time reaches the visibility timeout). */
async function heldElsewhere(id: string) {
  const group = await groupOf(stack, channel, "sub");
  await stack.redis.xclaim(stack.keys.channel(channel), group, "other", 0, id, "IDLE", 0);
}

describe("a retry that comes due", () => {
  it("is taken only by one reader: never one another reader holds", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    receiver.respond({ status: 500 });
    const [id] = await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    receiver.respond({ status: 204 });
    await waitUntil((await retryDueAt(stack, channel, "sub"))!);
    // Another deliverer has just taken it again: it is its own for its visibility timeout
    // (2 x timeoutMs + 5 s).
    await heldElsewhere(id!);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(1);
    expect(await pendingCount(stack, channel, "sub")).toBe(1);
    // The schedule looks again when that reader's visibility runs out (2 x 10 s + 5 s with the
    // default timeoutMs), not before.
    expect(await retryDueAt(stack, channel, "sub")).toBeGreaterThan(Date.now() + 20_000);
  });
});

describe("a subscription deleted and made again while a deliverer works on it", () => {
  it("never has the old deliverer take its messages, nor post them to the old URL", async () => {
    const next = await startReceiver();
    try {
      await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
      receiver.respond(async (req) => {
        if (req.n === 1) {
          const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
            method: "DELETE",
          });
          expect(res.status).toBe(204);
          await subscribe(stack, channel, { name: "sub", url: next.url, from: "earliest" });
          await publish(stack, channel, [{ data: "after" }]);
        }
        return { status: 204 };
      });
      // More than one take's worth: the old deliverer takes again after the delete.
      const before = await publish(
        stack,
        channel,
        Array.from({ length: 12 }, (_, i) => ({ data: i })),
      );
      await runPass(stack);
      await runPass(stack);
      await next.waitFor((r) => r.messages().length >= 13);
      // The old deliverer sent some of what it had taken before the delete, each once, and
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
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxConcurrency: 1 });
    expect((await patch({ paused: true })).status).toBe(200);
    const [held] = await publish(stack, channel, [{ data: 0 }]);
    await publish(stack, channel, [{ data: 1 }]);
    // Another reader holds the one request the subscription may have in flight, so the delivery
    // the resume starts at once finds no room: the wake member is then the only thing that
    // brings the message.
    const group = await groupOf(stack, channel, "sub");
    await stack.redis.xreadgroup(
      "GROUP",
      group,
      "other",
      "COUNT",
      1,
      "STREAMS",
      stack.keys.channel(channel),
      ">",
    );
    // A schedule entry left over for the paused subscription: the pass drops it...
    await stack.redis.zadd(stack.keys.due(), Date.now(), `wake:${channel}/sub`);
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
    // The other reader lets go of its message (acked): there is room again.
    await stack.redis.xack(stack.keys.channel(channel), group, held!);
    await runPass(stack);
    expect(receiver.messages().map((m) => m.data)).toEqual([1]);
  });
});

describe("a take that fails", () => {
  it("lets every request in flight end and be settled before the run ends", async () => {
    await loadScripts(stack); // each take one EVALSHA
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    receiver.respond({ status: 204, delayMs: 150 });
    await publish(
      stack,
      channel,
      Array.from({ length: 30 }, (_, data) => ({ data })),
    );
    // The first take takes the window's start of the thirty (a backlog: the window grows as
    // they succeed); the second, sent while they are POSTed, fails.
    const remove = stack.bridge.faults.add({
      kind: "unavailable",
      times: 1,
      match: nth(runsScript(TAKE_LUA, stack.keys.channel(channel)), 2),
    });
    const summary = await runPass(stack);
    const passEnded = Date.now();
    remove();
    // The requests in flight all went out and were answered before the run ended, and what they
    // delivered was acked by its last write.
    expect(receiver.requests.length).toBeGreaterThanOrEqual(START_CONCURRENCY);
    expect(receiver.requests.every((r) => r.status === 204 && !r.senderGone)).toBe(true);
    expect(Math.max(...receiver.requests.map((r) => r.at))).toBeLessThan(passEnded);
    expect(summary.subscriptions.find((s) => s.channel === channel)?.error).toMatch(/UNAVAILABLE/);
    expect(await pendingCount(stack, channel, "sub")).toBe(0);
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

describe("a deliverer that works longer than its messages' visibility timeout", () => {
  it("has nothing it holds taken by another, and sends each message once", async () => {
    // timeoutMs 1500: visibility 2 x 1.5 s + 5 s = 8 s; 25 requests of 1.2 s, 5 at a time: 6 s
    // of sending, and every message is taken at most one request's time before it goes out.
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 1,
      timeoutMs: 1500,
      maxConcurrency: 10,
    });
    receiver.respond({ status: 204, delayMs: 1200 });
    await publish(
      stack,
      channel,
      Array.from({ length: 30 }, (_, i) => ({ data: i })),
    );
    const first = runPass(stack);
    // Passes keep coming while it works: each looks for what ran out, and finds nothing.
    const others = (async () => {
      for (let i = 0; i < 8; i++) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        await runPass(stack);
      }
    })();
    await Promise.all([first, others]);
    await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all delivered");
    const ids = receiver.messages().map((m) => m.id);
    expect(ids).toHaveLength(30);
    expect(new Set(ids).size).toBe(30);
    expect(receiver.messages().every((m) => m.attempt === 1)).toBe(true);
    // No reader is left in the group: each run deleted its own.
    const consumers = (await stack.redis.xinfo(
      "CONSUMERS",
      stack.keys.channel(channel),
      await groupOf(stack, channel, "sub"),
    )) as unknown[][];
    expect(consumers.map((c) => c[1]).filter((name) => name !== WAITING_ROOM)).toEqual([]);
  }, 30_000);
});
