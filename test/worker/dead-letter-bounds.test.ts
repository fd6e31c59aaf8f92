// Dead letters are bounded by DEAD_LETTER_MAX_MESSAGES and DEAD_LETTER_MAX_AGE_MS, and whatever
// the bounds trim is counted on the subscription (deadLettersDropped, deadLettersExpired), never
// silent. Small bounds here: 5 dead letters, one hour.
//
// Time is passed in, not waited for: a dead letter's id is its time of death, so dead letters
// that died hours ago are written with those ids, straight into Redis, before the Worker parks the
// next one (which trims by the Worker's clock).

import { describe, expect, it } from "vitest";
import { DEAD_LETTER_LUA } from "../../shared/lua/dead-letter.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver, WebhookMessage } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { deliverUntil, runsOver, settled } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  getSubscription,
  pendingCount,
  publish,
  runPass,
  subscribe,
} from "../helpers/subscriptions.ts";

const MAX_MESSAGES = 5;
const MAX_AGE_MS = 3_600_000;
const MINUTE_MS = 60_000;
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "dlq-bounds",
  {
    vars: {
      KICK_ON_PUBLISH: "false",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "200",
      DEAD_LETTER_MAX_MESSAGES: String(MAX_MESSAGES),
      DEAD_LETTER_MAX_AGE_MS: String(MAX_AGE_MS),
    },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const dlq = () => stack.keys.deadLetters(channel, "sub");
const path = (rest = "") => `/v1/channels/${channel}/subscriptions/sub${rest}`;

/** The original message ids of the subscription's dead letters, oldest first, read in Redis. */
async function parked(): Promise<string[]> {
  const entries = await stack.redis.xrange(dlq(), "-", "+");
  return entries.map(([, fields]) => fields[fields.indexOf("o") + 1]!);
}

interface Listing {
  messages: { id: string }[];
  next: string | null;
  expired: number;
  dropped: number;
}

async function listing(): Promise<Listing> {
  const res = await stack.api(path("/dead-letters?limit=1000"));
  expect(res.status).toBe(200);
  return (await res.json()) as Listing;
}

/** What the subscription shows of its dead letters. */
async function counts() {
  const view = await getSubscription(stack, channel, "sub");
  return {
    deadLetters: view.deadLetters,
    deadLettersExpired: view.deadLettersExpired,
    deadLettersDropped: view.deadLettersDropped,
  };
}

/** Writes a dead letter that died `agoMs` ago (its id is its time of death); returns its `o`. */
async function diedAgo(agoMs: number, seq = 0): Promise<string> {
  const died = Date.now() - agoMs;
  const original = `${died - 1000}-${seq}`;
  await stack.redis.xadd(
    dlq(),
    `${died}-${seq}`,
    ...["o", original, "d", JSON.stringify({ seeded: seq }), "a", "1", "e", "HTTP 500"],
  );
  return original;
}

/** Subscribes "sub" with one attempt: what the receiver fails goes straight to the dead letters. */
const subscribeOneAttempt = (batchSize = 10) =>
  subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1, batchSize });

/** Publishes `count` messages the receiver fails, and delivers until they are all dead letters. */
async function deadLetter(count: number): Promise<string[]> {
  receiver.respond({ status: 500 });
  const ids = await publish(
    stack,
    channel,
    Array.from({ length: count }, (_, i) => ({ data: { i } })),
  );
  await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), "all dead-lettered");
  return ids;
}

const isOdd = (m: WebhookMessage) => (m.data as { n: number }).n % 2 === 1;

describe("dead letters past DEAD_LETTER_MAX_MESSAGES", () => {
  it("keep the newest, within the bound after every pass, and count the ones dropped", async () => {
    await subscribeOneAttempt(4);
    // Odd messages are rejected one by one (and, with one attempt, dead-lettered); even ones
    // are accepted.
    receiver.respond((req) => ({
      status: 200,
      body: { failed: (req.body?.messages ?? []).filter(isOdd).map((m) => m.id) },
    }));
    const ids: string[] = [];
    for (let round = 0; round < 4; round++) {
      const data = Array.from({ length: 5 }, (_, i) => ({ data: { n: 5 * round + i } }));
      ids.push(...(await publish(stack, channel, data)));
      await deliverUntil(stack, channel, () => settled(stack, channel, "sub"), `round ${round}`);
      expect(await stack.redis.xlen(dlq())).toBeLessThanOrEqual(MAX_MESSAGES);
    }
    const odd = ids.filter((_, n) => n % 2 === 1); // 10 rejected
    const even = ids.filter((_, n) => n % 2 === 0);

    expect(await parked()).toEqual(odd.slice(-MAX_MESSAGES));
    expect(await counts()).toEqual({
      deadLetters: MAX_MESSAGES,
      deadLettersExpired: 0,
      deadLettersDropped: odd.length - MAX_MESSAGES,
    });
    const page = await listing();
    expect(page.messages.map((m) => m.id)).toEqual(odd.slice(-MAX_MESSAGES));
    expect(page).toMatchObject({ expired: 0, dropped: odd.length - MAX_MESSAGES });
    // Nothing else is lost: every message was accepted, is a dead letter, or is counted dropped.
    expect(receiver.acceptedIds().sort()).toEqual(even.sort());
    expect(await pendingCount(stack, channel, "sub")).toBe(0);
  });

  it("drops the oldest of a single run's own copies when it parks more than the bound", async () => {
    await subscribeOneAttempt(10);
    const ids = await deadLetter(7);
    expect(await parked()).toEqual(ids.slice(-MAX_MESSAGES));
    expect(await counts()).toMatchObject({ deadLetters: 5, deadLettersDropped: 2 });
  });

  it("costs 2 XTRIM per dead-lettering run, and one HINCRBY more when it drops", async () => {
    await subscribeOneAttempt(10);
    receiver.respond((req) => ({
      status: 200,
      body: { failed: (req.body?.messages ?? []).map((m) => m.id) },
    }));
    const parkTwo = () =>
      countCommands(stack.redis, async () => {
        await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
        expect((await runPass(stack)).deadLettered).toBe(2);
      });
    await parkTwo(); // 2 parked
    const within = await parkTwo(); // 4: nothing to trim
    await parkTwo(); // 6 -> 5
    const dropping = await parkTwo(); // 7 -> 5
    expect(within.byCommand.xtrim).toBe(2);
    expect(dropping.byCommand).toEqual({
      ...within.byCommand,
      hincrby: (within.byCommand.hincrby ?? 0) + 1,
    });
    expect(await counts()).toMatchObject({ deadLetters: 5, deadLettersDropped: 3 });
  });
});

describe("dead letters older than DEAD_LETTER_MAX_AGE_MS", () => {
  it("are trimmed when the next one is parked, and counted as expired", async () => {
    await subscribeOneAttempt();
    await diedAgo(3 * MAX_AGE_MS, 1);
    await diedAgo(MAX_AGE_MS + 10 * MINUTE_MS, 2);
    const recent = await diedAgo(MAX_AGE_MS - 10 * MINUTE_MS, 3);
    // Until a dead letter is written, nothing is trimmed.
    expect(await counts()).toEqual({
      deadLetters: 3,
      deadLettersExpired: 0,
      deadLettersDropped: 0,
    });

    const [first] = await deadLetter(1);
    expect(await parked()).toEqual([recent, first]);
    expect(await counts()).toEqual({
      deadLetters: 2,
      deadLettersExpired: 2,
      deadLettersDropped: 0,
    });
    expect(await listing()).toMatchObject({ expired: 2, dropped: 0 });

    // Counted once: the next dead letter finds nothing more to expire.
    const [second] = await deadLetter(1);
    expect(await parked()).toEqual([recent, first, second]);
    expect(await counts()).toMatchObject({ deadLettersExpired: 2 });
  });

  it("count apart from those dropped for the count bound", async () => {
    await subscribeOneAttempt();
    await diedAgo(2 * MAX_AGE_MS, 1);
    for (let seq = 2; seq <= 5; seq++) await diedAgo(10 * MINUTE_MS, seq);
    const ids = await deadLetter(2); // 5 - 1 expired + 2 = 6: one dropped
    expect(await counts()).toEqual({
      deadLetters: 5,
      deadLettersExpired: 1,
      deadLettersDropped: 1,
    });
    expect((await parked()).slice(-2)).toEqual(ids);
  });
});

describe("a dead-lettering whose reply is lost", () => {
  it("trims and counts once when it is repeated", async () => {
    await subscribeOneAttempt();
    await diedAgo(2 * MAX_AGE_MS, 1);
    await diedAgo(2 * MAX_AGE_MS, 2);
    const kept: string[] = [];
    for (let seq = 3; seq <= 6; seq++) kept.push(await diedAgo(10 * MINUTE_MS, seq));
    await loadScripts(stack, [DEAD_LETTER_LUA]);
    stack.bridge.faults.clear();
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(DEAD_LETTER_LUA, dlq()),
      times: 1,
    });
    let ids: string[] = [];
    const injected = await injectedDuring(stack, async () => {
      ids = await deadLetter(2);
    });
    stack.bridge.faults.clear();
    expect(injected["drop-reply"]).toBe(1);
    // 6 - 2 expired + 2 parked = 6: the oldest one left is dropped.
    expect(await parked()).toEqual([...kept.slice(1), ...ids]);
    expect(await counts()).toEqual({
      deadLetters: 5,
      deadLettersExpired: 2,
      deadLettersDropped: 1,
    });
  });
});

describe("redrive with bounded dead letters", () => {
  it("delivers what was kept, leaves nothing on the redrive stream, and keeps the counts", async () => {
    await subscribeOneAttempt();
    const ids = await deadLetter(7);
    receiver.respond({ status: 204 });
    const res = await stack.post(path("/dead-letters/redrive"), undefined);
    expect(await res.json()).toEqual({ redriven: MAX_MESSAGES, missing: [] });
    await deliverUntil(
      stack,
      channel,
      async () =>
        receiver.acceptedIds().length === MAX_MESSAGES &&
        (await stack.redis.xlen(stack.keys.redrive(channel, "sub"))) === 0 &&
        (await runsOver(stack, channel, "sub", "redrive")),
      "the redriven messages delivered, nobody delivering",
    );
    expect(receiver.acceptedIds()).toEqual(ids.slice(-MAX_MESSAGES));
    expect(await counts()).toEqual({
      deadLetters: 0,
      deadLettersExpired: 0,
      deadLettersDropped: 2,
    });
  });

  it("parks a redriven message that fails again as a new dead letter, within the bound", async () => {
    await subscribeOneAttempt();
    const ids = await deadLetter(MAX_MESSAGES);
    await stack.post(path("/dead-letters/redrive"), undefined);
    await deliverUntil(
      stack,
      channel,
      async () =>
        (await stack.redis.xlen(dlq())) === MAX_MESSAGES &&
        (await stack.redis.xlen(stack.keys.redrive(channel, "sub"))) === 0 &&
        (await runsOver(stack, channel, "sub", "redrive")),
      "dead-lettered again, nobody delivering",
    );
    expect(await parked()).toEqual(ids);
    expect(await counts()).toEqual({
      deadLetters: MAX_MESSAGES,
      deadLettersExpired: 0,
      deadLettersDropped: 0,
    });
  });
});

describe("deleting a subscription", () => {
  it("removes its dead-letter counts with the rest of its state", async () => {
    await subscribeOneAttempt();
    await diedAgo(2 * MAX_AGE_MS);
    await deadLetter(MAX_MESSAGES + 1);
    expect(await counts()).toMatchObject({ deadLettersExpired: 1, deadLettersDropped: 1 });
    expect((await stack.api(path(), { method: "DELETE" })).status).toBe(204);
    expect(await stack.redis.hlen(stack.keys.state(channel))).toBe(0);
  });
});
