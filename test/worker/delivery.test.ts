import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../../worker/retry.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import {
  deliverUntil,
  gate,
  passWhenRetryDue,
  retryDueAt,
  settled,
  timedPass,
  until,
} from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  getSubscription,
  pendingCount,
  publish,
  runPass,
  subscribe,
  waitUntil,
} from "../helpers/subscriptions.ts";

// Passes run by hand (no kick), retries come quickly: timing is real, but short. Tests that wait
// for a retry read its due time from {p}:due and wait for the clock to pass it.
const RETRY_BASE_MS = 300;
const RETRY_MAX_MS = 2000;
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "delivery",
  {
    vars: {
      KICK_ON_PUBLISH: "false",
      RETRY_BASE_MS: String(RETRY_BASE_MS),
      RETRY_MAX_MS: String(RETRY_MAX_MS),
    },
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

/** The backoff after `attempt` failed attempts of subscription "sub" (its jitter is keyed by name). */
const backoff = (attempt: number) =>
  retryDelayMs(attempt, "sub", { retryBaseMs: RETRY_BASE_MS, retryMaxMs: RETRY_MAX_MS });
const dlqLength = () => stack.redis.xlen(stack.keys.deadLetters(channel, "sub"));
const groupInfo = async () => {
  const flat = (
    (await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))) as unknown[][]
  )[0]!;
  const field = (name: string) => Number(flat[flat.indexOf(name) + 1]);
  return { pending: field("pending"), lag: field("lag") };
};
const pending = () => pendingCount(stack, channel, "sub");
const retryAt = async () => {
  const at = await retryDueAt(stack, channel, "sub");
  expect(at, "a retry is scheduled").not.toBeNull();
  return at!;
};

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
    // Batches cut in stream order, each in stream order. Without `ordered`, two may be in flight
    // at once (the window starts at 2), so they can arrive either way round.
    const batches = receiver.requests
      .map((r) => r.body!.messages.map((m) => m.id))
      .sort((a, b) => ids.indexOf(a[0]!) - ids.indexOf(b[0]!));
    expect(batches.map((batch) => batch.length)).toEqual([10, 10, 5]);
    expect(batches.flat()).toEqual(ids);
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
    // The attempt's own time: the second the request arrived in, give or take one.
    const arrived = Math.floor(request.at / 1000);
    const timestamp = Number(request.headers["webhook-timestamp"]);
    expect(timestamp).toBeGreaterThanOrEqual(arrived - 1);
    expect(timestamp).toBeLessThanOrEqual(arrived + 1);
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
          // The publish had no traceparent: streamhook started its trace (docs/tracing.md).
          traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/),
        },
      ],
    });
    expect(request.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
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
    await until("both delivered, nobody delivering", () => settled(stack, channel, "sub"));
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

  it("reads past a long run of messages its filters leave out, in the same run", async () => {
    await subscribeReceiver({ types: ["order.created"] });
    const posted = gate();
    receiver.respond(async (req) => {
      if (req.n === 1) await posted.opened; // held until the rest is published
      return { status: 204 };
    });
    await publish(stack, channel, [{ data: "first", type: "order.created" }]);
    const pass = runPass(stack);
    await receiver.waitFor((r) => r.requests.length === 1);
    // The run's last round, once the request ends, reads more than one take's worth that its
    // filter leaves out before the message it wants.
    const others = Array.from({ length: 400 }, (_, i) => ({ data: i, type: "order.deleted" }));
    await publish(stack, channel, [...others, { data: "last", type: "order.created" }]);
    posted.open();
    const summary = await pass;
    expect(receiver.messages().map((m) => m.data)).toEqual(["first", "last"]);
    expect(summary.filtered).toBe(400);
    expect(await pending()).toBe(0);
  });
});

describe("webhook-id", () => {
  it("differs between two subscriptions given the same batch", async () => {
    const other = await startReceiver();
    try {
      await subscribeReceiver();
      const theirs = await subscribe(stack, channel, { name: "other", url: other.url });
      other.setSecret(theirs.secret);
      const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
      await runPass(stack);
      const [a, b] = [receiver, other].map((r) => {
        expect(r.requests).toHaveLength(1);
        expect(r.requests[0]!.verified).toBe(true);
        expect(r.messages().map((m) => m.id)).toEqual(ids);
        return r.requests[0]!.headers["webhook-id"];
      });
      expect(a).toMatch(/^msg_[0-9a-f]{32}$/);
      expect(a).not.toBe(b);
    } finally {
      await other.close();
    }
  });

  it("differs for a new subscription of the same name given the same messages", async () => {
    await subscribeReceiver();
    const ids = await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub`, { method: "DELETE" });
    expect(res.status).toBe(204);
    await subscribeReceiver({ from: "earliest" });
    await runPass(stack); // creation also starts a delivery: either gets there, once
    await receiver.waitFor((r) => r.requests.length === 2);
    const [before, after] = receiver.requests;
    expect(after!.body?.messages.map((m) => m.id)).toEqual(ids);
    expect(after!.headers["webhook-id"]).not.toBe(before!.headers["webhook-id"]);
  });
});

describe("a failing subscriber", () => {
  it("keeps a batch answered 5xx pending and retries it once its backoff is over, same webhook-id", async () => {
    await subscribeReceiver();
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    receiver.respond({ status: 500 });
    const failed = await timedPass(stack);
    expect(await pending()).toBe(2);
    // Due one backoff after the attempt, which the pass made between its start and its end.
    const due = await retryAt();
    expect(due).toBeGreaterThanOrEqual(failed.startedAt + backoff(1));
    expect(due).toBeLessThanOrEqual(failed.endedAt + backoff(1));

    const early = await timedPass(stack);
    expect(early.startedAt, "this pass ran before the retry was due").toBeLessThan(due);
    expect(receiver.requests).toHaveLength(1);

    receiver.respond({ status: 200 });
    await passWhenRetryDue(stack, channel, "sub");
    expect(receiver.requests).toHaveLength(2);
    const [first, second] = receiver.requests;
    expect(second!.at).toBeGreaterThanOrEqual(due);
    expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
    expect(second!.body?.messages.map((m) => m.attempt)).toEqual([2, 2]);
    expect(await pending()).toBe(0);
  });

  it("schedules each retry of a message that keeps failing further out than the last", async () => {
    await subscribeReceiver();
    await publish(stack, channel, [{ data: 1 }]);
    receiver.respond({ status: 500 });
    let pass = await timedPass(stack);
    const delays: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(receiver.messages().at(-1)?.attempt).toBe(attempt);
      const due = await retryAt();
      // The documented schedule: base * 2^(attempt-1), within 20% jitter, counted from the
      // attempt (made between the pass's start and end).
      const nominal = RETRY_BASE_MS * 2 ** (attempt - 1);
      expect(due - pass.startedAt).toBeGreaterThanOrEqual(0.8 * nominal);
      expect(due - pass.endedAt).toBeLessThanOrEqual(1.2 * nominal);
      delays.push(due - receiver.requests.at(-1)!.at);
      if (attempt < 3) pass = await passWhenRetryDue(stack, channel, "sub");
    }
    expect(delays[1]).toBeGreaterThan(delays[0]!);
    expect(delays[2]).toBeGreaterThan(delays[1]!);
  });

  it("reads nothing new while the endpoint fails as a whole", async () => {
    await subscribeReceiver({ batchSize: 2 });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }, { data: 4 }]);
    // A 500: a 429 or 503 without Retry-After is congestion first, answered by a smaller window
    // while it can shrink (test/worker/adaptive-concurrency.test.ts).
    receiver.respond({ status: 500 });
    await runPass(stack);
    // Both batches went out at once (the window's start); both failed.
    const sent = receiver.requests.length;
    const before = await groupInfo();
    await publish(stack, channel, [{ data: 5 }]);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(sent);
    const after = await groupInfo();
    expect(after.pending).toBe(before.pending);
    expect(after.lag).toBe(before.lag + 1);
  });

  it("counts no attempt for messages taken but never sent", async () => {
    // 20 messages in batches of 2: one run takes all 10 batches, has at most 5 requests in flight
    // (its connections), and gives back the batches it holds unsent when the endpoint fails.
    await subscribeReceiver({ batchSize: 2 });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 20 }, (_, data) => ({ data })),
    );
    receiver.respond({ status: 503 });
    await runPass(stack);
    const failed = receiver.requests.length;
    expect(failed).toBeLessThan(10);
    receiver.respond({ status: 204 });
    await passWhenRetryDue(stack, channel, "sub");
    await deliverUntil(stack, channel, () => receiver.acceptedIds().length === 20, "all acked");
    // Each message's attempt is the number of requests that carried it, no more.
    const carried = new Map<string, number>();
    for (const m of receiver.messages()) {
      carried.set(m.id, (carried.get(m.id) ?? 0) + 1);
      expect(m.attempt).toBe(carried.get(m.id));
    }
    expect([...carried.values()].filter((n) => n === 2)).toHaveLength(failed * 2);
    expect([...carried.keys()].sort()).toEqual([...ids].sort());
  });

  it("retries only the messages listed in failed, while the rest of the stream flows", async () => {
    await subscribeReceiver({ batchSize: 3 });
    const ids = await publish(
      stack,
      channel,
      [1, 2, 3, 4, 5, 6].map((data) => ({ data })),
    );
    // Its two batches go out at once: the one carrying ids[1] lists it in "failed".
    receiver.respond((req) =>
      req.body?.messages.some((m) => m.id === ids[1])
        ? { status: 200, body: { failed: [ids[1]] } }
        : { status: 204 },
    );
    const summary = await runPass(stack);
    expect(summary.delivered).toBe(5);
    expect(summary.retried).toBe(1);
    expect(
      receiver
        .messages()
        .map((m) => m.data as number)
        .sort(),
    ).toEqual([1, 2, 3, 4, 5, 6]);
    receiver.respond({ status: 204 });
    expect(await pending()).toBe(1);

    await passWhenRetryDue(stack, channel, "sub");
    expect(receiver.requests.at(-1)!.body?.messages.map((m) => [m.id, m.attempt])).toEqual([
      [ids[1], 2],
    ]);
    expect(await pending()).toBe(0);
  });

  it.each([
    ["a timeout", { status: 200, delayMs: 1500 }, /^timeout after 500 ms$/],
    // workerd's fetch throws on a dropped connection ("network error: ..."); under wrangler's test
    // harness the Worker's requests go out through this process, and miniflare turns a failed
    // one into a 500 answer (its body the error's text), so that is what the Worker sees here.
    ["a dropped connection", "drop" as const, /^network error: |^HTTP 500; response: /],
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
    await passWhenRetryDue(stack, channel, "sub");
    const view = () => getSubscription(stack, channel, "sub");
    expect(await view()).toMatchObject({ consecutiveFailures: 2, lastError: "HTTP 500" });
    receiver.respond({ status: 204 });
    await passWhenRetryDue(stack, channel, "sub");
    const after = await view();
    expect(after).toMatchObject({ consecutiveFailures: 0, lastError: "HTTP 500" });
    expect(Date.parse(after.lastSuccessAt as string)).toBeGreaterThan(
      Date.parse(after.lastErrorAt as string),
    );
  });

  it("treats a refused connection like a failure: error recorded, retried after the first backoff", async () => {
    await subscribeReceiver();
    await receiver.close();
    await publish(stack, channel, [{ data: 1 }]);
    const pass = await timedPass(stack);
    expect(pass.delivered).toBe(0);
    expect(await pending()).toBe(1);
    const view = await getSubscription(stack, channel, "sub");
    // "network error: ..." from workerd's fetch in production; a 500 under the test harness (see
    // the dropped connection above).
    expect(view.lastError).toMatch(/^network error: |^HTTP 500; response: /);
    expect(view.consecutiveFailures).toBe(1);
    const due = await retryAt();
    expect(due).toBeGreaterThanOrEqual(pass.startedAt + backoff(1));
    expect(due).toBeLessThanOrEqual(pass.endedAt + backoff(1));
  });

  it("dead-letters a message after maxAttempts, with its last error, and acks it", async () => {
    await subscribeReceiver({ maxAttempts: 2 });
    const [id] = await publish(stack, channel, [{ data: { n: 1 }, type: "t" }]);
    receiver.respond({ status: 502 });
    await runPass(stack);
    const summary = await passWhenRetryDue(stack, channel, "sub");
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

  it.each([429, 503])(
    "honours Retry-After on %i when it asks for longer than the backoff",
    async (status) => {
      await subscribeReceiver();
      await publish(stack, channel, [{ data: 1 }]);
      receiver.respond({ status, headers: { "retry-after": "1" } });
      const failed = await timedPass(stack);
      const due = await retryAt();
      expect(due).toBeGreaterThanOrEqual(failed.startedAt + 1000);
      expect(due).toBeLessThanOrEqual(failed.endedAt + 1000);

      receiver.respond({ status: 204 });
      await waitUntil(failed.endedAt + backoff(1)); // the backoff alone is over, not the 1 s asked
      const early = await timedPass(stack);
      expect(early.startedAt, "this pass ran before the second asked for").toBeLessThan(due);
      expect(receiver.requests).toHaveLength(1);

      await passWhenRetryDue(stack, channel, "sub");
      expect(receiver.requests).toHaveLength(2);
      expect(receiver.requests[1]!.at).toBeGreaterThanOrEqual(due);
    },
  );

  it.each([303, 307])("treats a %i redirect as a failure and never follows it", async (status) => {
    const target = await startReceiver();
    try {
      await subscribeReceiver();
      await publish(stack, channel, [{ data: 1 }]);
      receiver.respond({ status, headers: { location: target.url } });
      const summary = await runPass(stack);
      expect(summary.delivered).toBe(0);
      expect(target.requests).toEqual([]);
      expect(await pending()).toBe(1);
      const view = await getSubscription(stack, channel, "sub");
      expect(view.lastError).toMatch(new RegExp(`^HTTP ${status}: a redirect .*not followed`));
      expect(view.consecutiveFailures).toBe(1);
      await retryAt();
    } finally {
      await target.close();
    }
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

  it("stops reading at 1,000 pending messages, where Upstash would refuse the read", async () => {
    await subscribeReceiver({ batchSize: 100 });
    // Every message rejected one by one: each stays pending while the stream flows on.
    receiver.respond((req) => ({
      status: 200,
      body: { failed: req.body!.messages.map((m) => m.id) },
    }));
    const half = Array.from({ length: 550 }, (_, i) => ({ data: i }));
    await publish(stack, channel, half);
    await publish(stack, channel, half);
    const summary = await runPass(stack);
    const mine = summary.subscriptions.find((s) => s.channel === channel);
    expect(mine?.error).toBeUndefined();
    expect(await groupInfo()).toEqual({ pending: 1000, lag: 100 });
    expect(receiver.messages()).toHaveLength(1000);
    expect((await getSubscription(stack, channel, "sub")).lastError).toBe(
      "rejected by the endpoint (listed in failed)",
    );
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
    await until("the backlog delivered, nobody delivering", () => settled(stack, channel, "sub"));
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
  });
});

describe("a subscription deleted while it is being delivered", () => {
  it("has its work dropped cleanly: no error, no group recreated, nothing scheduled", async () => {
    await subscribeReceiver();
    const deleted = gate();
    receiver.respond(async () => {
      await deleted.opened; // answered only once the subscription is gone
      return { status: 204 };
    });
    await publish(stack, channel, [{ data: 1 }]);
    const passing = runPass(stack);
    await receiver.waitFor((r) => r.requests.length === 1);
    const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub`, { method: "DELETE" });
    expect(res.status).toBe(204);
    deleted.open();
    // The pass answers once its visit is over: whatever that visit did after the delete is done.
    const during = await passing;
    expect(during.subscriptions.find((s) => s.channel === channel)?.error).toBeUndefined();

    const after = await runPass(stack);
    expect(after.subscriptions.filter((s) => s.channel === channel)).toEqual([]);
    expect(await stack.redis.xinfo("GROUPS", stack.keys.channel(channel))).toEqual([]);
    const due = await stack.redis.zrange(stack.keys.due(), "0", "-1");
    expect(due.filter((m) => m.includes(`${channel}/`))).toEqual([]);
  });
});
