import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  getSubscription,
  pendingCount,
  publish,
  runPass,
  sleep,
  subscribe,
} from "../helpers/subscriptions.ts";

// Passes run by hand (no kick), retries come quickly: timing is real, but short.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "delivery",
  {
    vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "300", RETRY_MAX_MS: "2000" },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

async function subscribeReceiver(body: Record<string, unknown> = {}) {
  const sub = await subscribe(stack, channel, { name: "sub", url: receiver.url, ...body });
  receiver.setSecret(sub.secret);
  return sub;
}

const dlqLength = () => stack.redis.xlen(stack.keys.deadLetters(channel, "sub"));
const groupInfo = async () => {
  const flat = (
    (await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))) as unknown[][]
  )[0]!;
  const field = (name: string) => Number(flat[flat.indexOf(name) + 1]);
  return { pending: field("pending"), lag: field("lag") };
};
const pending = () => pendingCount(stack, channel, "sub");

describe("a healthy subscriber", () => {
  it("gets every message, signed, in stream order, in batches of batchSize", async () => {
    await subscribeReceiver({ batchSize: 10 });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 25 }, (_, i) => ({ data: { i }, type: "t" })),
    );
    const summary = await runPass(stack);
    expect(summary.delivered).toBe(25);
    expect(receiver.requests.map((r) => r.body?.messages.length)).toEqual([10, 10, 5]);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    expect(await pending()).toBe(0);
  });

  it("sends the documented body and Standard Webhooks headers", async () => {
    await subscribeReceiver();
    const [id] = await publish(stack, channel, [
      { data: { price: 9.5, tags: ["a"] }, type: "x.y" },
    ]);
    await runPass(stack);
    const request = receiver.requests[0]!;
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["webhook-id"]).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(Number(request.headers["webhook-timestamp"])).toBeCloseTo(Date.now() / 1000, -2);
    expect(request.headers["webhook-signature"]).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(request.body).toEqual({
      channel,
      subscription: "sub",
      messages: [
        {
          id,
          type: "x.y",
          data: { price: 9.5, tags: ["a"] },
          publishedAt: new Date(Number(id!.split("-")[0])).toISOString(),
          attempt: 1,
        },
      ],
    });
  });

  it("delivers nothing published before it subscribed, by default", async () => {
    await publish(stack, channel, [{ data: "before" }]);
    await subscribeReceiver();
    await publish(stack, channel, [{ data: "after" }]);
    await runPass(stack);
    expect(receiver.messages().map((m) => m.data)).toEqual(["after"]);
  });

  it("delivers history when created from earliest", async () => {
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await subscribeReceiver({ from: "earliest" });
    await runPass(stack); // creation also starts a delivery: either gets there, once
    await receiver.waitFor((r) => r.messages().length >= 2);
    expect(receiver.messages().map((m) => m.data)).toEqual([1, 2]);
  });

  it("acks messages whose type matches none of its filters without a request", async () => {
    await subscribeReceiver({ types: ["order.created", "invoice.*"] });
    await publish(stack, channel, [
      { data: 1, type: "order.created" },
      { data: 2, type: "order.deleted" },
      { data: 3, type: "invoice.paid" },
      { data: 4 },
      { data: 5, type: "invoice" },
    ]);
    const summary = await runPass(stack);
    expect(receiver.messages().map((m) => m.data)).toEqual([1, 3]);
    expect(summary.filtered).toBe(3);
    expect(await pending()).toBe(0);
  });
});

describe("a failing subscriber", () => {
  it("keeps a batch answered 5xx pending and retries it after the backoff, same webhook-id", async () => {
    await subscribeReceiver();
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    receiver.respond({ status: 500 });
    await runPass(stack);
    expect(await pending()).toBe(2);

    await runPass(stack); // too early: the backoff (about 300 ms) is not over
    expect(receiver.requests).toHaveLength(1);

    receiver.respond({ status: 200 });
    await sleep(450);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(2);
    const [first, second] = receiver.requests;
    expect(second!.at - first!.at).toBeGreaterThanOrEqual(240);
    expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
    expect(second!.body?.messages.map((m) => m.attempt)).toEqual([2, 2]);
    expect(await pending()).toBe(0);
  });

  it("reads nothing new while the endpoint fails as a whole", async () => {
    await subscribeReceiver({ batchSize: 2 });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }, { data: 4 }]);
    receiver.respond({ status: 503 });
    await runPass(stack);
    const before = await groupInfo();
    await publish(stack, channel, [{ data: 5 }]);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(1);
    const after = await groupInfo();
    expect(after.pending).toBe(before.pending);
    expect(after.lag).toBe(before.lag + 1);
  });

  it("does not count an attempt for messages read ahead but never sent", async () => {
    await subscribeReceiver({ batchSize: 2 });
    const ids = await publish(
      stack,
      channel,
      [1, 2, 3, 4].map((data) => ({ data })),
    );
    receiver.respond({ status: 503 });
    await runPass(stack);
    receiver.respond({ status: 204 });
    await sleep(700);
    await runPass(stack);
    await runPass(stack);
    const attempts = receiver.requests.slice(1).flatMap((r) => r.body!.messages);
    expect(attempts.map((m) => [m.id, m.attempt])).toEqual([
      [ids[0], 2],
      [ids[1], 2],
      [ids[2], 1],
      [ids[3], 1],
    ]);
  });

  it("retries only the messages listed in failed, while the rest of the stream flows", async () => {
    await subscribeReceiver({ batchSize: 3 });
    const ids = await publish(
      stack,
      channel,
      [1, 2, 3, 4, 5, 6].map((data) => ({ data })),
    );
    receiver.respond((req) =>
      req.n === 1 ? { status: 200, body: { failed: [ids[1]] } } : { status: 204 },
    );
    const summary = await runPass(stack);
    expect(summary.delivered).toBe(5);
    expect(summary.retried).toBe(1);
    expect(receiver.messages().map((m) => m.data)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await pending()).toBe(1);

    await sleep(450);
    await runPass(stack);
    expect(receiver.requests.at(-1)!.body?.messages.map((m) => [m.id, m.attempt])).toEqual([
      [ids[1], 2],
    ]);
    expect(await pending()).toBe(0);
  });

  it.each([
    ["a timeout", { status: 200, delayMs: 1500 }, /timeout after 500 ms/],
    // workerd answers a connection dropped mid-request with a synthetic 5xx, not a throw.
    ["a dropped connection", "drop" as const, /network error|HTTP 5\d\d/],
  ])("treats %s like a failure: nothing acked, error recorded", async (_, reply, error) => {
    await subscribeReceiver({ timeoutMs: 500 });
    await publish(stack, channel, [{ data: 1 }]);
    receiver.respond(reply);
    await runPass(stack);
    expect(await pending()).toBe(1);
    const view = await getSubscription(stack, channel, "sub");
    expect(view.lastError).toMatch(error);
    expect(view.consecutiveFailures).toBe(1);
  });

  it("counts consecutive failed requests, and resets the count on the next success", async () => {
    await subscribeReceiver();
    await publish(stack, channel, [{ data: 1 }]);
    receiver.respond({ status: 500 });
    await runPass(stack);
    await sleep(450);
    await runPass(stack);
    const view = () => getSubscription(stack, channel, "sub");
    expect(await view()).toMatchObject({ consecutiveFailures: 2, lastError: "HTTP 500" });
    receiver.respond({ status: 204 });
    await sleep(900);
    await runPass(stack);
    const after = await view();
    expect(after).toMatchObject({ consecutiveFailures: 0, lastError: "HTTP 500" });
    expect(Date.parse(after.lastSuccessAt as string)).toBeGreaterThan(
      Date.parse(after.lastErrorAt as string),
    );
  });

  it("treats a refused connection like a failure", async () => {
    await subscribeReceiver();
    await receiver.close();
    await publish(stack, channel, [{ data: 1 }]);
    const summary = await runPass(stack);
    expect(summary.delivered).toBe(0);
    expect(await pending()).toBe(1);
  });

  it("dead-letters a message after maxAttempts, with its last error, and acks it", async () => {
    await subscribeReceiver({ maxAttempts: 2 });
    const [id] = await publish(stack, channel, [{ data: { n: 1 }, type: "t" }]);
    receiver.respond({ status: 502 });
    await runPass(stack);
    await sleep(450);
    const summary = await runPass(stack);
    expect(summary.deadLettered).toBe(1);
    expect(receiver.requests).toHaveLength(2);
    expect(await pending()).toBe(0);
    expect(await dlqLength()).toBe(1);
    const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub/dead-letters`);
    const { messages } = (await res.json()) as { messages: Record<string, unknown>[] };
    expect(messages).toEqual([
      expect.objectContaining({
        id,
        type: "t",
        data: { n: 1 },
        attempts: 2,
        lastError: "HTTP 502",
      }),
    ]);
  });

  it("honours Retry-After on 429 when it asks for longer than the backoff", async () => {
    await subscribeReceiver();
    await publish(stack, channel, [{ data: 1 }]);
    receiver.respond({ status: 429, headers: { "retry-after": "2" } });
    await runPass(stack);
    receiver.respond({ status: 204 });
    await sleep(600); // past the 300 ms backoff, not past the 2 s asked for
    await runPass(stack);
    expect(receiver.requests).toHaveLength(1);
    await sleep(1600);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(2);
  });

  it("pauses the subscription on 410 Gone and keeps its messages", async () => {
    await subscribeReceiver();
    await publish(stack, channel, [{ data: 1 }]);
    receiver.respond({ status: 410 });
    await runPass(stack);
    const view = await getSubscription(stack, channel, "sub");
    expect(view.paused).toBe(true);
    expect(view.lastError).toContain("410");
    expect(view.consecutiveFailures).toBe(1);
    expect(await pending()).toBe(1);
    await publish(stack, channel, [{ data: 2 }]);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(1);
  });
});

describe("paused subscriptions", () => {
  it("keep their backlog and get it all once resumed", async () => {
    await subscribeReceiver();
    const paused = await stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: true }),
    });
    expect(paused.status).toBe(200);
    const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(0);
    const view = await getSubscription(stack, channel, "sub");
    expect(view.lag).toBe(2);

    await stack.api(`/v1/channels/${channel}/subscriptions/sub`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: false }),
    });
    await runPass(stack); // resuming also starts a delivery: either gets there, once
    await receiver.waitFor((r) => r.messages().length >= 2);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
  });
});
