// Ordered subscriptions on the real stack: the messages of one ordering key go out in publish
// order, one request at a time, over every deliverer at once (lua/take.ts: its lanes); other keys,
// and keyless messages (a lane of their own), go side by side up to maxConcurrency. A failure
// holds back its key only, until its message is delivered or dead-lettered.

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startReceiver, type TestReceiver, type WebhookMessage } from "../helpers/receiver.ts";
import { deliverUntil, settled } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, runPass, subscribe } from "../helpers/subscriptions.ts";

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
    await runPass(stack);
    // The endpoint backs off as any subscription's does; a's later messages wait behind a0.
    expect(receiver.messages().map((m) => m.id)).toEqual([a0, ids[1]]);
    const held = await getSubscription(stack, channel, "sub");
    expect(held.heldKeys).toEqual([
      { orderingKey: "a", messageId: a0, since: expect.any(String), waiting: 4 },
    ]);
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
    const dead = (await res.json()) as { messages: { id: string }[] };
    expect(dead.messages.map((d) => d.id)).toEqual([ids[1]]);
    expect((await getSubscription(stack, channel, "sub")).heldKeys).toEqual([]);
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
