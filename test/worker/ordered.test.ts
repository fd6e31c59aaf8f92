// Ordered subscriptions on the real stack: the messages of one ordering key go out in publish
// order, one request at a time, over every deliverer at once (lua/take.ts: its lanes); other keys,
// and keyless messages (a lane of their own), go side by side within the window. A failure
// holds back its key only, until its message is delivered or dead-lettered.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { stateField, timerMember } from "../../shared/keys.ts";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { injectedDuring, runsScript } from "../helpers/faults.ts";
import { startReceiver, type TestReceiver, type WebhookMessage } from "../helpers/receiver.ts";
import { deliverUntil, gate, settled } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import {
  getSubscription,
  pendingCount,
  runPass,
  subscribe,
  waitUntil,
} from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let channel = "";
let n = 0;

beforeAll(async () => {
  // Passes run by hand; retries come within a fraction of a second.
  stack = await startStack({
    vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "50", RETRY_MAX_MS: "200" },
  });
});
afterAll(() => stack?.stop());
beforeEach(async () => {
  receiver = await startReceiver();
  channel = `ordered-${++n}`;
});
afterEach(() => receiver?.close());

interface Keyed {
  data: unknown;
  orderingKey?: string;
}

/** Publishes (201 expected) and returns the ids in order. */
async function publish(messages: Keyed[]): Promise<string[]> {
  const res = await stack.post(`/v1/channels/${channel}/messages`, { messages });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { ids: string[] }).ids;
}

/** `count` messages of each key, interleaved: k0 #0, k1 #0, ..., k0 #1, ... */
function interleaved(keys: (string | undefined)[], count: number): Keyed[] {
  const out: Keyed[] = [];
  for (let i = 0; i < count; i++) {
    for (const key of keys)
      out.push({ data: { key: key ?? null, i }, ...(key ? { orderingKey: key } : {}) });
  }
  return out;
}

const keyOf = (m: WebhookMessage) => m.orderingKey ?? "";

/** The ids each key's messages arrived in, by key (duplicates kept). */
function arrivals(messages: WebhookMessage[]): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const m of messages) byKey.set(keyOf(m), [...(byKey.get(keyOf(m)) ?? []), m.id]);
  return byKey;
}

/** Publish order by key. */
function published(ids: string[], messages: Keyed[]): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  ids.forEach((id, i) => {
    const key = messages[i]!.orderingKey ?? "";
    byKey.set(key, [...(byKey.get(key) ?? []), id]);
  });
  return byKey;
}

/** The most requests carrying one key's messages in flight at once, over all keys. */
function maxInFlightPerKey(r: TestReceiver): number {
  const spans = new Map<string, [number, number][]>();
  for (const req of r.requests) {
    const end = req.endedAt ?? Number.POSITIVE_INFINITY;
    for (const key of new Set((req.body?.messages ?? []).map(keyOf))) {
      spans.set(key, [...(spans.get(key) ?? []), [req.at, end]]);
    }
  }
  let most = 0;
  for (const list of spans.values()) {
    for (const [start] of list) {
      most = Math.max(most, list.filter(([s, e]) => s <= start && start < e).length);
    }
  }
  return most;
}

const patch = (name: string, body: object) =>
  stack.api(`/v1/channels/${channel}/subscriptions/${name}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

const deliverAll = (name = "sub") =>
  deliverUntil(stack, channel, () => settled(stack, channel, name), "all delivered", {
    timeoutMs: 20_000,
  });

describe("an ordered subscription", () => {
  it("delivers one key's messages in publish order, one request at a time", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      maxConcurrency: 5,
    });
    receiver.respond({ status: 204, delayMs: 5 });
    const messages = interleaved(["k"], 30);
    const ids = await publish(messages);
    await runPass(stack);
    await deliverAll();
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    expect(receiver.messages().every((m) => keyOf(m) === "k")).toBe(true);
    expect(maxInFlightPerKey(receiver)).toBe(1);
  });

  it("is one FIFO when no message has a key", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, ordered: true });
    const messages = interleaved([undefined], 20);
    const ids = await publish(messages);
    await runPass(stack);
    await deliverAll();
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    expect(receiver.maxInFlight()).toBe(1);
  });

  it("sends different keys, and keyless messages, side by side up to maxConcurrency", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
      maxConcurrency: 4,
    });
    receiver.respond({ status: 204, delayMs: 40 });
    const messages = interleaved(["a", "b", "c", undefined], 5);
    const ids = await publish(messages);
    await runPass(stack);
    await deliverAll();
    expect(arrivals(receiver.messages())).toEqual(published(ids, messages));
    expect(receiver.maxInFlight()).toBe(4);
    expect(maxInFlightPerKey(receiver)).toBe(1);
  });

  it("holds back only the key of a failed message, until it is delivered", async () => {
    // One message a request: a's failure is its own, not b's too.
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
    });
    const messages = interleaved(["a", "b"], 5);
    const ids = await publish(messages);
    const a0 = ids[0]!;
    let failures = 0;
    receiver.respond((req) => {
      if (req.body?.messages.some((m) => m.id === a0) && failures < 3) {
        failures++;
        return { status: 500 };
      }
      return { status: 204 };
    });
    // Its window open (an endpoint known to take 25 at once: lua/take.ts, window), so the first
    // take reads all ten, and a's later four wait behind a0 (a window of 2 would read two).
    await stack.redis.hset(stack.keys.state(channel), { [stateField("sub", "concurrency")]: 25 });
    await runPass(stack);
    // The endpoint backs off as any subscription's does; a's later messages wait behind a0.
    expect(receiver.messages().map((m) => m.id)).toEqual([a0, ids[1]]);
    const held = await getSubscription(stack, channel, "sub");
    expect(held.heldKeys).toEqual([
      { orderingKey: "a", messageId: a0, since: expect.any(String), waiting: 4 },
    ]);
    // The attempt log says which request holds which key, behind which message.
    const log = await stack.api(`/v1/channels/${channel}/subscriptions/sub/attempts`);
    const { attempts } = (await log.json()) as {
      attempts: { firstId: string; status: number; at: string; held: unknown[] }[];
    };
    expect(attempts.map((a) => [a.firstId, a.status, a.held])).toEqual(
      expect.arrayContaining([
        [a0, 500, [{ orderingKey: "a", messageId: a0 }]],
        [ids[1], 204, []],
      ]),
    );
    expect(attempts).toHaveLength(2);
    await deliverAll();
    const a = published(ids, messages).get("a")!;
    const b = published(ids, messages).get("b")!;
    const order = receiver.messages().map((m) => m.id);
    expect(arrivals(receiver.messages()).get("a")).toEqual([a0, a0, a0, ...a]);
    expect(arrivals(receiver.messages()).get("b")).toEqual(b);
    // b went on while a was held: all of b before a0 got through.
    expect(order.indexOf(b.at(-1)!)).toBeLessThan(order.lastIndexOf(a0));
    expect((await getSubscription(stack, channel, "sub")).heldKeys).toEqual([]);
  });

  it("lets a key move on once its failed message is dead-lettered", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
      maxAttempts: 2,
    });
    const messages = interleaved(["a"], 4);
    const ids = await publish(messages);
    receiver.respond((req) =>
      req.body?.messages.some((m) => m.id === ids[1]) ? { status: 500 } : { status: 204 },
    );
    await runPass(stack);
    await deliverAll();
    expect(receiver.messages().map((m) => m.id)).toEqual([ids[0], ids[1], ids[1], ids[2], ids[3]]);
    const res = await stack.api(`/v1/channels/${channel}/subscriptions/sub/dead-letters`);
    const dead = (await res.json()) as { messages: { id: string; orderingKey?: string }[] };
    expect(dead.messages.map((d) => [d.id, d.orderingKey])).toEqual([[ids[1], "a"]]);
    expect((await getSubscription(stack, channel, "sub")).heldKeys).toEqual([]);
    // Redriven, it goes out on its own, with its key, outside the key's order (docs/delivery.md).
    receiver.respond({ status: 204 });
    const redriven = await stack.post(
      `/v1/channels/${channel}/subscriptions/sub/dead-letters/redrive`,
      {},
    );
    expect(redriven.status).toBe(200);
    await runPass(stack);
    await deliverAll();
    expect(receiver.messages().at(-1)).toMatchObject({ id: ids[1], orderingKey: "a" });
  });

  it("lets a key move on once its failed message is gone from the channel (trimmed)", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, ordered: true });
    const messages = interleaved(["a"], 3);
    const ids = await publish(messages);
    receiver.respond((req) =>
      req.body?.messages.some((m) => m.id === ids[0]) ? { status: 500 } : { status: 204 },
    );
    await runPass(stack);
    expect(receiver.messages().map((m) => m.id)).toEqual([ids[0]]);
    // As retention's trim would: the entry goes while it is pending.
    await stack.redis.xdel(stack.keys.channel(channel), ids[0]!);
    await deliverAll();
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    expect(await stack.redis.exists(stack.keys.lanes(channel, "sub"))).toBe(0);
  });

  it("retries a partial ack from each key's failed message, never past it", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 10,
    });
    const messages = interleaved(["a", "b", "c"], 3);
    const ids = await publish(messages);
    const [a0, b0] = ids;
    let first = true;
    receiver.respond(() => {
      if (!first) return { status: 204 };
      first = false;
      return { status: 200, body: { failed: [a0, b0] } };
    });
    await runPass(stack);
    await deliverAll();
    const byKey = arrivals(receiver.messages());
    const sent = published(ids, messages);
    expect(byKey.get("a")).toEqual([a0, ...sent.get("a")!]);
    expect(byKey.get("b")).toEqual([b0, ...sent.get("b")!]);
    expect(byKey.get("c")).toEqual(sent.get("c"));
    // Each request carried at most one message of a key.
    for (const req of receiver.requests) {
      const keys = (req.body?.messages ?? []).map(keyOf);
      expect(new Set(keys).size).toBe(keys.length);
    }
  });
});

describe("an ordering key", () => {
  it("is kept with its message: in history, and a delayed message's while it waits and once it enters", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, ordered: true });
    const res = await stack.post(`/v1/channels/${channel}/messages`, {
      messages: [
        { data: 1, orderingKey: 'k\u00e9y "1"' },
        { data: 2 },
        { data: 3, orderingKey: "k2", delayMs: 300 },
      ],
    });
    expect(res.status).toBe(201);
    const [first, second, delayed] = ((await res.json()) as { ids: string[] }).ids;
    const waiting = await stack.api(`/v1/channels/${channel}/delayed`);
    const page = (await waiting.json()) as { messages: { id: string; orderingKey?: string }[] };
    expect(page.messages).toMatchObject([{ id: delayed, orderingKey: "k2", data: 3 }]);
    const due = await stack.redis.zscore(stack.keys.due(), timerMember("delay", channel));
    await waitUntil(Number(due));
    await runPass(stack);
    await deliverAll();
    const history = await stack.api(`/v1/channels/${channel}/messages`);
    const stored = ((await history.json()) as { messages: Record<string, unknown>[] }).messages;
    expect(stored.map((m) => [m.data, m.orderingKey])).toEqual([
      [1, 'k\u00e9y "1"'],
      [2, undefined],
      [3, "k2"],
    ]);
    expect(stored[0]!.id).toBe(first);
    expect(stored[1]!.id).toBe(second);
    expect(stored[2]!.delayedId).toBe(delayed);
    expect(receiver.messages().map((m) => [m.data, m.orderingKey])).toEqual([
      [1, 'k\u00e9y "1"'],
      [2, undefined],
      [3, "k2"],
    ]);
  });

  it("is refused with a 400 naming the field when empty, too long or holding a control character", async () => {
    for (const orderingKey of ["", "k".repeat(257), "a\nb"]) {
      const res = await stack.post(`/v1/channels/${channel}/messages`, {
        messages: [{ data: 1 }, { data: 2, orderingKey }],
      });
      expect(res.status).toBe(400);
      const { error } = (await res.json()) as { error: { message: string } };
      expect(error.message, JSON.stringify(orderingKey)).toContain("body.messages[1].orderingKey");
    }
    expect(await stack.redis.exists(stack.keys.channel(channel))).toBe(0);
  });
});

describe("the ordered setting", () => {
  it("is refused on a pull subscription: 400 at creation, 409 on a PATCH", async () => {
    const created = await stack.post(`/v1/channels/${channel}/subscriptions`, {
      name: "puller",
      mode: "pull",
      ordered: true,
    });
    expect(created.status).toBe(400);
    expect(((await created.json()) as { error: { message: string } }).error.message).toContain(
      "ordered",
    );
    await subscribe(stack, channel, { name: "puller", mode: "pull" });
    const patched = await patch("puller", { ordered: true });
    expect(patched.status).toBe(409);
    expect((await getSubscription(stack, channel, "puller")).ordered).toBe(false);
  });

  it("turned off, lets what waited behind a key go out, unordered", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
    });
    const messages = interleaved(["a"], 3);
    const ids = await publish(messages);
    receiver.respond({ status: 500 });
    await runPass(stack);
    expect(receiver.messages().map((m) => m.id)).toEqual([ids[0]]);
    expect(await stack.redis.exists(stack.keys.lanes(channel, "sub"))).toBe(1);
    const patched = await patch("sub", { ordered: false });
    expect(patched.status).toBe(200);
    expect(await stack.redis.exists(stack.keys.lanes(channel, "sub"))).toBe(0);
  });
});

/**
 * Each key's arrivals, checked against its publish order: every message once accepted, in order,
 * and nothing else but a repeat of a message whose request was not accepted, right after it.
 */
function expectInOrder(r: TestReceiver, sent: Map<string, string[]>): void {
  const seen = new Map<string, { id: string; accepted: boolean }[]>();
  for (const req of r.requests) {
    const failed = new Set((req.replyBody as { failed?: string[] } | undefined)?.failed ?? []);
    const ok = req.status !== undefined && req.status < 300 && !req.senderGone;
    for (const m of req.body?.messages ?? []) {
      const list = seen.get(keyOf(m)) ?? [];
      list.push({ id: m.id, accepted: ok && !failed.has(m.id) });
      seen.set(keyOf(m), list);
    }
  }
  for (const [key, ids] of sent) {
    const got = seen.get(key) ?? [];
    expect(
      got.filter((a) => a.accepted).map((a) => a.id),
      key,
    ).toEqual(ids);
    got.forEach((a, i) => {
      if (!a.accepted) expect(got[i + 1]?.id, `${key}: after a failure`).toBe(a.id);
    });
  }
}

describe("an ordered subscription under load", () => {
  it("delivers 10,000 messages over 100 keys in order with no gap, to an endpoint failing 20% at random, beside an unordered one", async () => {
    const plain = await startReceiver();
    try {
      const flaky = () => ({
        status: Math.random() < 0.2 ? 500 : 204,
        delayMs: Math.floor(Math.random() * 51),
      });
      receiver.respond(flaky);
      plain.respond(flaky);
      await subscribe(stack, channel, { name: "sub", url: receiver.url, ordered: true });
      await subscribe(stack, channel, { name: "plain", url: plain.url });
      const keys = Array.from({ length: 100 }, (_, k) => `key-${k}`);
      const messages = interleaved(keys, 100);
      const ids: string[] = [];
      for (let i = 0; i < messages.length; i += 1000) {
        ids.push(...(await publish(messages.slice(i, i + 1000))));
      }
      // Two invocations at a time, as the cron and the queue run them: the lanes hold over both.
      const done = async () =>
        (await settled(stack, channel, "sub")) && (await settled(stack, channel, "plain"));
      const drive = () =>
        deliverUntil(stack, channel, done, "all delivered", { timeoutMs: 240_000 });
      await Promise.all([drive(), drive()]);
      expectInOrder(receiver, published(ids, messages));
      expect(maxInFlightPerKey(receiver)).toBe(1);
      expect(new Set(plain.acceptedIds())).toEqual(new Set(ids));
      expect(await stack.redis.exists(stack.keys.lanes(channel, "plain"))).toBe(0);
    } finally {
      await plain.close();
    }
  }, 300_000);
});

describe("an ordered subscription when things fail", () => {
  it("keeps each key in order when takes lose their replies", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
      timeoutMs: 1000,
    });
    receiver.respond({ status: 204, delayMs: 5 });
    const messages = interleaved(["a", "b", undefined], 6);
    const ids = await publish(messages);
    const match = runsScript(TAKE_LUA, stack.keys.lanes(channel, "sub"));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 4 });
    const injected = await injectedDuring(stack, async () => {
      await runPass(stack);
      // A lost take's next heads are its reader's: they come back after their visibility
      // timeout, as what a lost take looked up does, and leave that reader in the group
      // (`settled` would wait for it).
      const done = async () =>
        (await pendingCount(stack, channel, "sub")) === 0 &&
        new Set(receiver.acceptedIds()).size === ids.length;
      await deliverUntil(stack, channel, done, "all delivered", { timeoutMs: 60_000 });
    });
    expect(injected["drop-reply"]).toBe(4);
    expectInOrder(receiver, published(ids, messages));
    expect(maxInFlightPerKey(receiver)).toBe(1);
  }, 90_000);

  it("sends a key's next message only after the one a killed run had in flight is delivered", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
      timeoutMs: 1000,
    });
    const messages = interleaved(["a"], 3);
    const ids = await publish(messages);
    const held = gate();
    const arrived = gate();
    receiver.respond(async (req) => {
      if (req.n === 1) {
        arrived.open();
        await held.opened;
      }
      return { status: 204 };
    });
    const pass = runPass(stack).catch(() => null);
    await arrived.opened;
    await stack.restartWorker();
    held.open();
    await pass;
    // The killed run's message comes back once its visibility timeout has passed; nothing of
    // the key went out meanwhile.
    // (The killed run's reader stays in the group: `settled` would wait for it.)
    const done = async () =>
      (await pendingCount(stack, channel, "sub")) === 0 &&
      new Set(receiver.acceptedIds()).size === ids.length;
    await deliverUntil(stack, channel, done, "all delivered", { timeoutMs: 30_000 });
    const sent = receiver.messages().map((m) => m.id);
    expect(sent).toEqual([ids[0], ids[0], ids[1], ids[2]]);
    expect(maxInFlightPerKey(receiver)).toBe(1);
  }, 60_000);
});
