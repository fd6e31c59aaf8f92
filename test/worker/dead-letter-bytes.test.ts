// Dead letters are bounded by bytes too (DEAD_LETTER_MAX_BYTES: 10,000 here, letters of about
// 950 bytes), as well as by count and age (dead-letter-bounds.test.ts), when they are parked and
// when the channel is swept (lua/dead-letter-bounds.ts). The oldest go first, and whatever goes is
// counted on the subscription (deadLettersDropped, deadLettersExpired), never silent.
//
// A dead letter's size is the bytes of its fields' values but `c`. Time is passed in: the cron's
// scheduled time is the sweep's clock.

import { describe, expect, it } from "vitest";
import { sweepMember } from "../../shared/keys.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { dueAt, getSubscription, publish, subscribe } from "../helpers/subscriptions.ts";

const MAX_BYTES = 10_000;
const DAY_MS = 86_400_000;
const GAP_MS = (7 * DAY_MS) / 10; // the sweep's gap with the default retention (sweep.test.ts)
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "dlq-bytes",
  {
    vars: {
      KICK_ON_PUBLISH: "false",
      EVENTS_CHANNEL: "none",
      DEAD_LETTER_MAX_BYTES: String(MAX_BYTES),
    },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const dlq = () => stack.keys.deadLetters(channel, "sub");
const cronAt = (at: number) =>
  stack.harness.getWorker().scheduled({ cron: "* * * * *", scheduledTime: new Date(at) });

interface Letter {
  id: string;
  fields: Record<string, string>;
}

/** The subscription's dead letters, oldest first, as stored. */
async function letters(): Promise<Letter[]> {
  const entries = await stack.redis.xrange(dlq(), "-", "+");
  return entries.map(([id, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return { id, fields };
  });
}

/** A letter's size as the bound counts it: its fields' values, `c` left out. */
const sizeOf = (fields: Record<string, string>) =>
  Object.entries(fields)
    .filter(([name]) => name !== "c")
    .reduce((sum, [, value]) => sum + Buffer.byteLength(value), 0);

async function counts() {
  const view = await getSubscription(stack, channel, "sub");
  return { expired: view.deadLettersExpired, dropped: view.deadLettersDropped };
}

/** About 950 bytes each: 10 fit in the bound. */
const padded = (count: number) =>
  Array.from({ length: count }, (_, n) => ({ data: { n, pad: "x".repeat(900) } }));

/**
 * Subscribes "sub" with one attempt, one request at a time (so letters die in the order they were
 * published).
 */
const subscribeOneAttempt = (batchSize: number) =>
  subscribe(stack, channel, {
    name: "sub",
    url: receiver.url,
    maxAttempts: 1,
    batchSize,
    maxConcurrency: 1,
  });

/** Publishes messages the receiver fails, until all are dead letters. */
async function deadLetter(count: number): Promise<string[]> {
  receiver.respond({ status: 500 });
  const ids = await publish(stack, channel, padded(count));
  await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all dead-lettered");
  return ids;
}

/**
 * The dead letters are the newest that fit: within the bound, and the next older one would not
 * have (its size told by a kept letter's, with its own id and data).
 */
async function expectNewestThatFit(ids: string[]) {
  const kept = await letters();
  const held = kept.reduce((sum, l) => sum + sizeOf(l.fields), 0);
  expect(held).toBeLessThanOrEqual(MAX_BYTES);
  expect(kept.map((l) => l.fields.o)).toEqual(ids.slice(-kept.length));
  const older = ids.length - kept.length - 1;
  expect(older).toBeGreaterThanOrEqual(0);
  const { o: _, d: __, ...rest } = kept[0]!.fields;
  const dropped = { ...rest, o: ids[older]!, d: JSON.stringify(padded(ids.length)[older]!.data) };
  expect(held + sizeOf(dropped)).toBeGreaterThan(MAX_BYTES);
  return kept;
}

describe("dead letters past DEAD_LETTER_MAX_BYTES", () => {
  it("keep the newest that fit, the oldest dropped first and counted", async () => {
    await subscribeOneAttempt(5);
    const ids = await deadLetter(30); // parked 5 at a time
    const kept = await expectNewestThatFit(ids);
    expect(kept.length).toBeGreaterThan(5);
    expect(await counts()).toEqual({ expired: 0, dropped: ids.length - kept.length });
  });

  it("drop the oldest of one park's own letters when they alone are over the bound", async () => {
    await subscribeOneAttempt(20);
    const ids = await deadLetter(20); // one request, one park of about 19,000 bytes
    const kept = await expectNewestThatFit(ids);
    expect(await counts()).toEqual({ expired: 0, dropped: ids.length - kept.length });
  });

  it("are dropped by the sweep too, those parked before the bound first", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    // As a bigger bound, and an older version, left them: 3 letters without `c`, then 12 of
    // 1,000 bytes each with theirs (the running total of their bytes).
    const data = "y".repeat(1000 - "o1".length);
    const old = Date.now() - 60_000;
    for (let i = 0; i < 3; i++) await stack.redis.xadd(dlq(), `${old}-${i}`, "o", `o${i}`);
    for (let i = 0; i < 12; i++) {
      const id = `${old + 1}-${i}`;
      const o = `o${i % 10}`;
      await stack.redis.xadd(dlq(), id, "o", o, "d", data, "c", String(1000 * (i + 1)));
    }
    const at = await dueAt(stack, sweepMember(channel)); // set by the subscribe: a gap away
    expect(at).not.toBeNull();
    await cronAt(at!);
    const kept = await letters();
    expect(kept.map((l) => l.id)).toEqual(
      Array.from({ length: 10 }, (_, i) => `${old + 1}-${i + 2}`),
    );
    expect(await counts()).toEqual({ expired: 0, dropped: 5 });
  });

  it("leave letters parked before the bound alone while the counted ones fit", async () => {
    await subscribeOneAttempt(4);
    const old = Date.now() - 60_000;
    for (let i = 0; i < 3; i++) await stack.redis.xadd(dlq(), `${old}-${i}`, "o", `o${i}`);
    await deadLetter(4);
    expect(await letters()).toHaveLength(7);
    expect(await counts()).toEqual({ expired: 0, dropped: 0 });
  });
});

describe("dead letters past DEAD_LETTER_MAX_AGE_MS", () => {
  it("expire by the sweep with nothing parked since, when the oldest is due, and are counted", async () => {
    // No retention: only the dead letters call for a sweep (the PATCH's own sweep finds none).
    await publish(stack, channel, [{ data: "first" }]);
    const res = await stack.api(`/v1/channels/${channel}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ retention: { maxAgeMs: null } }),
    });
    expect(res.status).toBe(200);
    await cronAt(Date.now());
    expect(await dueAt(stack, sweepMember(channel))).toBeNull();

    await subscribeOneAttempt(3);
    await deadLetter(3);
    const [oldest] = await letters();
    const expiresAt = Number(oldest!.id.split("-")[0]) + 14 * DAY_MS;
    expect(await dueAt(stack, sweepMember(channel))).toBe(expiresAt);

    await cronAt(expiresAt - 60_000);
    expect(await letters()).toHaveLength(3);
    await cronAt(expiresAt + 60_000);
    expect(await letters()).toHaveLength(0);
    expect(await counts()).toEqual({ expired: 3, dropped: 0 });
    expect(await dueAt(stack, sweepMember(channel))).toBeNull();
  });

  it("wait no longer than the channel's own sweep when it has retention", async () => {
    await subscribeOneAttempt(2);
    await deadLetter(2);
    const at = (await dueAt(stack, sweepMember(channel)))!;
    expect(at).toBeLessThanOrEqual(Date.now() + GAP_MS);
  });
});
