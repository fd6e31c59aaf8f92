import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Pulled, pullAction, pullOnce, pullPath } from "../helpers/pull.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, publish, sleep, subscribe } from "../helpers/subscriptions.ts";

// Pull subscriptions over real HTTP: the Worker in workerd, the bridge, a real redis-server.
let stack: Stack;
beforeAll(async () => {
  // No trim comes due (lua/trim.ts), so command counts are exactly the pull's.
  // Small messages, so one pull may take 1,000 (PULL_REPLY_BYTES / MAX_MESSAGE_BYTES).
  stack = await startStack({
    vars: { TRIM_MIN_INTERVAL_MS: "3600000", MAX_MESSAGE_BYTES: "1000" },
  });
});
afterAll(async () => {
  await stack?.stop();
});

const base = pullPath;

async function pull(channel: string, name: string, body: Record<string, unknown> = {}) {
  return (await pullOnce(stack, channel, name, body)).messages;
}

const call = (channel: string, name: string, action: string, body: unknown) =>
  pullAction<Record<string, number>>(stack, channel, name, action, body);

const pullSub = (channel: string, name: string, extra: Record<string, unknown> = {}) =>
  subscribe(stack, channel, { name, mode: "pull", from: "earliest", ...extra });

const many = (n: number) => Array.from({ length: n }, (_, i) => ({ data: { n: i } }));

describe("a pull subscription", () => {
  it("is created without a url, listed with mode, lag and pending, and never scheduled", async () => {
    await subscribe(stack, "p-list", { name: "hook", url: "http://127.0.0.1:9/" });
    const created = await pullSub("p-list", "puller");
    expect(created).toMatchObject({ mode: "pull", url: null });
    expect(created.secret).toBeUndefined();
    await publish(stack, "p-list", many(3));
    await pull("p-list", "puller", { max: 1 });
    const res = await stack.api("/v1/channels/p-list/subscriptions");
    const { subscriptions } = (await res.json()) as { subscriptions: Record<string, unknown>[] };
    expect(subscriptions.map((s) => [s.name, s.mode, s.url === null])).toEqual([
      ["hook", "push", false],
      ["puller", "pull", true],
    ]);
    expect(subscriptions[1]).toMatchObject({ lag: 2, pending: 1 });
    // publish woke (and the deliverer scheduled) the push subscription only
    const due = await stack.redis.zrange(stack.keys.due(), "0", "-1");
    expect(due.filter((m) => m.includes("p-list/hook")).length).toBeGreaterThan(0);
    expect(due.filter((m) => m.includes("p-list/puller"))).toEqual([]);
  });

  it("refuses a url on a pull subscription and requires one on a push subscription", async () => {
    const withUrl = await stack.post("/v1/channels/p-bad/subscriptions", {
      name: "x",
      mode: "pull",
      url: "http://127.0.0.1:9/",
    });
    expect(withUrl.status).toBe(400);
    const noUrl = await stack.post("/v1/channels/p-bad/subscriptions", { name: "x" });
    expect(noUrl.status).toBe(400);
  });

  it("answers 409 not_pull_subscription to a pull from a push subscription", async () => {
    await subscribe(stack, "p-push", { name: "hook", url: "http://127.0.0.1:9/" });
    const res = await stack.post(`${base("p-push", "hook")}/pull`, {});
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "not_pull_subscription",
    );
  });
});

describe("pulling", () => {
  it("hands a message to one consumer only within its visibility timeout", async () => {
    await pullSub("p-compete", "work");
    const ids = await publish(stack, "p-compete", many(40));
    const consumers = ["a", "b", "c", "d"];
    const rounds = await Promise.all(
      consumers.map(async (consumer) => {
        const got: string[] = [];
        // Spread over 1.5 s, so that pulls looking for expired leases (one a second in this
        // isolate) come while the others' leases are held, as well as pulls that do not look.
        for (let i = 0; i < 6; i++) {
          const messages = await pull("p-compete", "work", {
            consumer,
            max: 3,
            visibilityTimeoutMs: 60_000,
          });
          got.push(...messages.map((m) => m.id));
          await sleep(250);
        }
        return got;
      }),
    );
    const all = rounds.flat();
    expect(new Set(all).size).toBe(all.length);
    expect(all.sort()).toEqual([...ids].sort().slice(0, all.length));
    expect(all.length).toBe(40);
    expect(rounds.every((r) => r.length > 0)).toBe(true);
  });

  it("hands a message out again after its visibility timeout, with its attempt counted", async () => {
    await pullSub("p-redeliver", "work");
    const [id] = await publish(stack, "p-redeliver", [{ type: "t.x", data: { a: 1 } }]);
    const first = await pull("p-redeliver", "work", { consumer: "a", visibilityTimeoutMs: 1000 });
    expect(first).toEqual([
      expect.objectContaining({ id, type: "t.x", data: { a: 1 }, attempt: 1 }),
    ]);
    expect(await pull("p-redeliver", "work", { consumer: "b" })).toEqual([]);
    await sleep(1100);
    const again = await pull("p-redeliver", "work", { consumer: "b" });
    expect(again).toEqual([expect.objectContaining({ id, attempt: 2 })]);
    expect(await call("p-redeliver", "work", "ack", { ids: [id] })).toEqual({ acked: 1 });
    expect(await call("p-redeliver", "work", "ack", { ids: [id] })).toEqual({ acked: 0 });
  });

  it("extends a lease for slow work", async () => {
    await pullSub("p-extend", "work");
    const [id] = await publish(stack, "p-extend", many(1));
    await pull("p-extend", "work", { visibilityTimeoutMs: 1000 });
    const extended = await call("p-extend", "work", "extend", {
      ids: [id],
      visibilityTimeoutMs: 60_000,
    });
    expect(extended).toEqual({ extended: 1 });
    await sleep(1100);
    expect(await pull("p-extend", "work", { consumer: "other" })).toEqual([]);
  });

  it("makes a nacked message visible again now, or after its delay", async () => {
    await pullSub("p-nack", "work");
    const [id] = await publish(stack, "p-nack", many(1));
    await pull("p-nack", "work", { visibilityTimeoutMs: 60_000 });
    expect(await call("p-nack", "work", "nack", { ids: [id] })).toEqual({ nacked: 1 });
    expect(await pull("p-nack", "work", { consumer: "b" })).toEqual([
      expect.objectContaining({ id, attempt: 2 }),
    ]);
    expect(await call("p-nack", "work", "nack", { ids: [id], delayMs: 1000 })).toEqual({
      nacked: 1,
    });
    expect(await pull("p-nack", "work")).toEqual([]);
    await sleep(1100);
    expect(await pull("p-nack", "work")).toEqual([expect.objectContaining({ id, attempt: 3 })]);
  });

  it("dead-letters a message instead of handing it out past maxAttempts", async () => {
    await pullSub("p-dead", "work", { maxAttempts: 2 });
    const [id] = await publish(stack, "p-dead", many(1));
    for (const attempt of [1, 2]) {
      expect(await pull("p-dead", "work")).toEqual([expect.objectContaining({ id, attempt })]);
      await call("p-dead", "work", "nack", { ids: [id] });
    }
    expect(await pull("p-dead", "work")).toEqual([]);
    const res = await stack.api(`${base("p-dead", "work")}/dead-letters`);
    const page = (await res.json()) as { messages: { id: string; attempts: number }[] };
    expect(page.messages).toEqual([expect.objectContaining({ id, attempts: 2 })]);
    expect(await getSubscription(stack, "p-dead", "work")).toMatchObject({
      pending: 0,
      deadLetters: 1,
    });
  });

  it("acks the ids a pull carries before it takes more", async () => {
    await pullSub("p-carry", "work");
    await publish(stack, "p-carry", many(6));
    const first = await pull("p-carry", "work", { max: 3 });
    const carried = async (ack: string[]) => {
      const res = await stack.post(`${base("p-carry", "work")}/pull`, { max: 3, ack });
      expect(res.status, await res.clone().text()).toBe(200);
      return (await res.json()) as { messages: Pulled[]; acked: number };
    };
    const second = await carried(first.map((m) => m.id));
    expect(second.acked).toBe(3);
    expect(second.messages.map((m) => m.attempt)).toEqual([1, 1, 1]);
    expect(await getSubscription(stack, "p-carry", "work")).toMatchObject({ pending: 3 });
    const last = await carried(second.messages.map((m) => m.id));
    expect(last).toEqual({ messages: [], acked: 3 });
    expect(await getSubscription(stack, "p-carry", "work")).toMatchObject({ pending: 0, lag: 0 });
  });

  it("skips and acks messages its types filter leaves out", async () => {
    await pullSub("p-types", "work", { types: ["order.*"] });
    await publish(stack, "p-types", [{ type: "invoice.paid", data: 1 }]);
    const [wanted] = await publish(stack, "p-types", [{ type: "order.paid", data: 2 }]);
    expect((await pull("p-types", "work", { max: 10 })).map((m) => m.id)).toEqual([wanted]);
    expect(await getSubscription(stack, "p-types", "work")).toMatchObject({ pending: 1, lag: 0 });
  });
});

describe("ack, nack and extend of ids that are not pending", () => {
  // Ids a consumer may well send: one it never pulled, a redriven message's 0-<n> form on a
  // subscription that never had dead letters redriven (no redrive stream, no group on it), one
  // acked already. Each counts 0 and changes nothing; sent with a pending one, only that counts.
  it("answers 200 and counts 0 for them, never 500, and counts only the pending ones of a mix", async () => {
    await pullSub("p-settle", "work");
    const ids = await publish(stack, "p-settle", many(4));
    const pulled = await pull("p-settle", "work", { max: 2, visibilityTimeoutMs: 60_000 });
    expect(pulled.map((m) => m.id)).toEqual(ids.slice(0, 2));
    expect(await call("p-settle", "work", "ack", { ids: [ids[0]] })).toEqual({ acked: 1 });
    const notPending = [ids[2]!, "0-5", "00-0", ids[0]!];
    for (const id of notPending) {
      expect(await call("p-settle", "work", "ack", { ids: [id] }), id).toEqual({ acked: 0 });
      expect(await call("p-settle", "work", "nack", { ids: [id] }), id).toEqual({ nacked: 0 });
      const extend = { ids: [id], visibilityTimeoutMs: 60_000 };
      expect(await call("p-settle", "work", "extend", extend), id).toEqual({ extended: 0 });
    }
    const mix = [...notPending, ids[1]!];
    const extend = { ids: mix, visibilityTimeoutMs: 60_000 };
    expect(await call("p-settle", "work", "extend", extend)).toEqual({ extended: 1 });
    const nack = { ids: mix, delayMs: 60_000 };
    expect(await call("p-settle", "work", "nack", nack)).toEqual({ nacked: 1 });
    expect(await call("p-settle", "work", "ack", { ids: mix })).toEqual({ acked: 1 });
    // The two never pulled are still there to pull, at their first attempt.
    expect(await getSubscription(stack, "p-settle", "work")).toMatchObject({ pending: 0, lag: 2 });
    expect((await pull("p-settle", "work", { max: 10 })).map((m) => [m.id, m.attempt])).toEqual(
      ids.slice(2).map((id) => [id, 1]),
    );
    expect(await stack.redis.exists(stack.keys.redrive("p-settle", "work"))).toBe(0);
  });
});

describe("long-polling", () => {
  it("returns as soon as a publish lands, before waitMs", async () => {
    await pullSub("p-wait", "work");
    const started = Date.now();
    const waiting = pull("p-wait", "work", { waitMs: 10_000 });
    await sleep(800);
    const [id] = await publish(stack, "p-wait", many(1));
    const messages = await waiting;
    expect(messages.map((m) => m.id)).toEqual([id]);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  // Ticks 100, 200 and 400 ms apart, then every 750 ms (functions/pull-wait.ts), each one take:
  // an EVALSHA and its XREADGROUP (so a publish is returned by the next tick), every fourth tick
  // its XPENDING too (a look for expired leases). Once ticks are 750 ms apart, that is 9 commands
  // every 3 s: 3 a second. Counted in ticks, not seconds: the same on a slow machine.
  it("costs one take a tick, ticks 750 ms apart once settled: about 3.3 commands per second of waiting", async () => {
    await pullSub("p-idle", "work");
    await pull("p-idle", "work"); // settings now held by the isolate, the take script cached
    // A nack here makes the next pull look: the wait's own first take looks, however slow the run.
    await call("p-idle", "work", "nack", { ids: ["1-1"] });
    const started = Date.now();
    const counted = await countCommands(stack.redis, () =>
      pull("p-idle", "work", { waitMs: 4000 }),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(4000);
    const { evalsha = 0 } = counted.byCommand;
    const ticks = evalsha - 1; // the pull's own take, then one a tick
    expect(counted.byCommand).toEqual({
      evalsha,
      xreadgroup: evalsha,
      // A look every fourth tick: the group's summary, and the holder's due ones.
      xpending: 2 * (1 + Math.floor(ticks / 4)),
    });
    // At 0.1, 0.3, 0.7, 1.45, 2.2, 2.95 and 3.7 s, and one at the deadline: 8 at most.
    expect(ticks).toBeGreaterThanOrEqual(4);
    expect(ticks).toBeLessThanOrEqual(8);
  });
});

describe("the pending limit", () => {
  it("answers 409 too_many_pending once a consumer holds 1,000 unacked messages", async () => {
    await pullSub("p-limit", "work");
    const ids = await publish(stack, "p-limit", many(1000));
    await publish(stack, "p-limit", many(10));
    const first = await pull("p-limit", "work", { consumer: "a", max: 995 });
    expect(first.length).toBe(995);
    // 5 left under the limit: a pull of 10 gets those 5
    expect((await pull("p-limit", "work", { consumer: "a", max: 10 })).length).toBe(5);
    const res = await stack.post(`${base("p-limit", "work")}/pull`, { consumer: "a", max: 10 });
    expect(res.status).toBe(409);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("too_many_pending");
    expect(error.message).toContain("ack");
    // another consumer of the group still pulls, and acking frees room
    expect((await pull("p-limit", "work", { consumer: "b", max: 10 })).length).toBe(10);
    await call("p-limit", "work", "ack", { ids: ids.slice(0, 10) });
    expect(await pull("p-limit", "work", { consumer: "a", max: 10 })).toEqual([]);
  }, 30_000);
});
