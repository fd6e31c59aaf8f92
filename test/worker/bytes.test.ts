import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { pendingCount, publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Every size is bounded in bytes as well as by count: a Worker has 128 MB, Upstash refuses
// requests over 10 MB, a receiver's body limit is a few MB. Passes are run by hand.
const MAX_BATCH_BYTES = 300_000;
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "bytes",
  {
    vars: {
      KICK_ON_PUBLISH: "false",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "200",
      MAX_BATCH_BYTES: String(MAX_BATCH_BYTES),
      MAX_MESSAGE_BYTES: String(512 * 1024),
    },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const kib = (n: number) => "x".repeat(n * 1024);
/** Publishes `count` messages of `size` KiB, a few per request (a request body is at most 1 MiB). */
async function publishLarge(count: number, sizeKib: number): Promise<string[]> {
  const perRequest = Math.max(1, Math.floor(900 / sizeKib));
  const ids: string[] = [];
  for (let i = 0; i < count; i += perRequest) {
    const n = Math.min(perRequest, count - i);
    ids.push(
      ...(await publish(
        stack,
        channel,
        Array.from({ length: n }, (_, j) => ({ data: { n: i + j, pad: kib(sizeKib) } })),
      )),
    );
  }
  return ids;
}

describe("large messages", () => {
  // First in the file: the bridge's largest reply is a maximum over its whole life.
  it("are read a few MB at a time, however many a batch holds", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 100 });
    const ids = await publishLarge(100, 150); // 15 MB in all: one batch's read would be as much
    await deliverUntil(stack, channel, () => receiver.messages().length >= 100, "all delivered");
    expect(new Set(receiver.messages().map((m) => m.id))).toEqual(new Set(ids));
    // A take holds at most 4 MiB (its share of memory, six at once), whatever the entries' sizes.
    expect(stack.bridge.stats.largestReplyBytes).toBeLessThan(5 * 1024 * 1024);
  });

  it("go in webhook bodies under MAX_BATCH_BYTES, each in stream order", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 10 });
    const ids = await publishLarge(12, 100);
    await runPass(stack);
    // The bodies go out side by side: each in stream order, all of them once.
    const bodies = receiver.requests.map((r) => r.body!.messages.map((m) => m.id));
    for (const body of bodies) expect(body).toEqual(ids.filter((id) => body.includes(id)));
    expect(bodies.flat().sort()).toEqual([...ids].sort());
    expect(Math.max(...receiver.requests.map((r) => Buffer.byteLength(r.raw)))).toBeLessThanOrEqual(
      MAX_BATCH_BYTES,
    );
    expect(receiver.requests.map((r) => r.body?.messages.length)).toEqual([2, 2, 2, 2, 2, 2]);
  });

  it("go alone when one is larger than MAX_BATCH_BYTES, and are never stuck for it", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 10 });
    const [small1] = await publish(stack, channel, [{ data: "a" }]);
    const [big] = await publishLarge(1, 400);
    const [small2] = await publish(stack, channel, [{ data: "b" }]);
    await runPass(stack);
    // Three bodies (they may go out side by side): the large one alone.
    const bodies = receiver.requests.map((r) => r.body?.messages.map((m) => m.id) ?? []);
    expect(bodies.sort()).toEqual([[small1], [big], [small2]].sort());
    expect(await pendingCount(stack, channel, "sub")).toBe(0);
  });

  it("all reach the dead letters of an endpoint that fails, however large the batch", async () => {
    // One dead-letter write of all 60 would be 12 MB: over Upstash's 10 MB request limit.
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 100,
      maxAttempts: 1,
    });
    receiver.respond({ status: 500 });
    const ids = await publishLarge(60, 200);
    const dead = () => stack.redis.xlen(stack.keys.deadLetters(channel, "sub"));
    await deliverUntil(stack, channel, async () => (await dead()) === 60, "60 dead letters");
    const parked = await stack.redis.xrange(stack.keys.deadLetters(channel, "sub"), "-", "+");
    expect(parked.map(([, f]) => f[f.indexOf("o") + 1]).sort()).toEqual([...ids].sort());
    expect(await pendingCount(stack, channel, "sub")).toBe(0);
  });
});

describe("a retry cut short by a failure", () => {
  it("counts no attempt for the messages it took but did not send", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 10 });
    // Two messages that each make a body of their own (MAX_BATCH_BYTES), both rejected once.
    const [first, second] = await publishLarge(2, 200);
    receiver.respond((req) => ({
      status: 200,
      body: { failed: req.body!.messages.map((m) => m.id) },
    }));
    await runPass(stack);
    // Their retry takes both; the first POST fails, so the second is never sent this time.
    receiver.respond((req) =>
      req.body!.messages[0]!.id === first ? { status: 500 } : { status: 204 },
    );
    // Passes until that retry went out: the entries come back by Redis' idle time, which starts
    // when the nack ran, a moment after the time the retry member was scored with.
    const attempts = (id: string) =>
      receiver
        .messages()
        .filter((m) => m.id === id)
        .map((m) => m.attempt);
    await deliverUntil(stack, channel, () => attempts(first!).includes(2), "the first's retry");
    receiver.respond({ status: 204 });
    await deliverUntil(
      stack,
      channel,
      async () => (await pendingCount(stack, channel, "sub")) === 0,
      "both delivered",
    );
    expect(attempts(first!)).toEqual([1, 2, 3]);
    expect(attempts(second!)).toEqual([1, 2]);
  });
});
