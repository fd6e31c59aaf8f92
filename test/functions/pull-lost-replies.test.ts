// Pulls whose Redis reply is lost, against the real stack: the bridge runs the request and hangs
// up (drop-reply) on exactly the take a rule is about. A lost reply may not lose a message, leave
// one pending without a lease that runs out, or hand one to two consumers within its visibility
// timeout. A pull is one take (lua/take.ts: read and lease in one step), and so is each tick of a
// long poll: the Worker runs it again (db.redis), and what the lost run took stays leased to its
// consumer until the visibility timeout, then comes back with its attempt counted.
//
// A pull looks for expired leases only on an isolate's first pull of a subscription and after a
// nack through it (PULL_LOOK_EVERY_MS an hour), so what a pull finds is known here.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WAIT_TICKS_MS } from "../../functions/pull-wait.ts";

import { LEASE_BASE_MS } from "../../shared/engine/queue.ts";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { type Pulled, pullOnce, QUIET_PULLS } from "../helpers/pull.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, groupOf, publish, subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: QUIET_PULLS });
});
afterAll(async () => {
  await stack?.stop();
});
// The take script is loaded up front, so each of its calls is one EVALSHA that runs.
beforeEach(async () => {
  stack.bridge.faults.clear();
  await loadScripts(stack, [TAKE_LUA]);
});

const pull = (channel: string, body: Record<string, unknown>) =>
  pullOnce(stack, channel, "work", body);

const many = (n: number) => Array.from({ length: n }, (_, i) => ({ data: { n: i } }));

/** Each pending entry of the subscription's group: its consumer, idle time and deliveries. */
async function pendingOf(channel: string) {
  const group = await groupOf(stack, channel, "work");
  const rows = (await stack.redis.xpending(stack.keys.channel(channel), group, "-", "+", 1000)) as [
    string,
    string,
    number,
    number,
  ][];
  return new Map(
    rows.map(([id, consumer, idle, deliveries]) => [id, { consumer, idle, deliveries }]),
  );
}

describe("a pull whose take reply is lost", () => {
  it("keeps what the lost take took leased to its consumer, until the visibility timeout", async () => {
    const channel = "lost-take";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    await pull(channel, {}); // the isolate holds the settings and has looked: a plain take next
    const ids = await publish(stack, channel, many(6));
    const visibilityTimeoutMs = 30_000;
    const stream = stack.keys.channel(channel);
    stack.bridge.faults.add({ kind: "drop-reply", match: runsScript(TAKE_LUA, stream), times: 1 });
    const started = Date.now();
    let got: Pulled[] = [];
    const injected = await injectedDuring(stack, async () => {
      ({ messages: got } = await pull(channel, { consumer: "a", max: 3, visibilityTimeoutMs }));
    });
    expect(injected["drop-reply"]).toBe(1);
    // The Worker ran the take again: it answered with the next three.
    expect(got.map((m) => [m.id, m.attempt])).toEqual(ids.slice(3).map((id) => [id, 1]));
    // Another consumer gets none of the six meanwhile.
    expect((await pull(channel, { consumer: "b", max: 10 })).messages).toEqual([]);
    // The first three are pending for "a", their idle time counting from the lost run's read
    // (the default visibility: no lease; visible again once it reaches visibilityTimeoutMs),
    // with their first delivery counted.
    const pending = await pendingOf(channel);
    const since = Date.now() - started;
    for (const id of ids.slice(0, 3)) {
      const entry = pending.get(id);
      expect(entry).toMatchObject({ consumer: "a", deliveries: 1 });
      expect(entry!.idle).toBeLessThanOrEqual(since);
    }
    expect(pending.size).toBe(6);
  });

  it("hands them back after the visibility timeout, with the lost attempt counted", async () => {
    const channel = "lost-take-back";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    await pull(channel, {});
    const ids = await publish(stack, channel, many(2));
    const stream = stack.keys.channel(channel);
    stack.bridge.faults.add({ kind: "drop-reply", match: runsScript(TAKE_LUA, stream), times: 1 });
    const first = await pull(channel, { consumer: "a", max: 1, visibilityTimeoutMs: 1000 });
    expect(first.messages.map((m) => m.id)).toEqual([ids[1]]);
    await stack.post(`/v1/channels/${channel}/subscriptions/work/ack`, { ids: [ids[1]] });
    await expectBackAfterTimeout(channel, [ids[0]!], 1000, 2);
  });

  it("leaves what a long-poll tick's lost take took with its consumer until the visibility timeout, then hands it out with its attempt counted", async () => {
    const channel = "lost-tick";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    await pull(channel, {});
    const stream = stack.keys.channel(channel);
    // The takes of consumer "poller" (its long poll's first pull, then its ticks). From the take
    // after which ticks are 750 ms apart, the next one loses its reply; the messages are
    // published in that spell, so that the tick whose reply is lost is the one that takes them.
    let takes = 0;
    let spell = () => {};
    const spellStarted = new Promise<void>((resolve) => {
      spell = resolve;
    });
    // Its reader, named with its visibility timeout (engine/queue.ts pullReader).
    const polls = runsScript(TAKE_LUA, stream, "poller~1000");
    stack.bridge.faults.add({
      kind: "drop-reply",
      times: 1,
      match: (commands) => {
        if (!polls(commands)) return false;
        if (++takes === WAIT_TICKS_MS.length) spell();
        return takes > WAIT_TICKS_MS.length;
      },
    });
    let got: Pulled[] = [];
    const polling = injectedDuring(stack, async () => {
      ({ messages: got } = await pull(channel, {
        consumer: "poller",
        max: 3,
        visibilityTimeoutMs: 1000,
        waitMs: 10_000,
      }));
    });
    await spellStarted;
    const ids = await publish(stack, channel, many(5));
    const injected = await polling;
    expect(injected["drop-reply"]).toBe(1);
    // The tick ran its take again: it answered with the two the lost run left.
    expect(got.map((m) => [m.id, m.attempt])).toEqual(ids.slice(3).map((id) => [id, 1]));
    expect(await getSubscription(stack, channel, "work")).toMatchObject({ pending: 5, lag: 0 });
    const pending = await pendingOf(channel);
    // A visibility of its own: its reader's name carries it (engine/queue.ts pullReader).
    for (const id of ids.slice(0, 3)) {
      expect(pending.get(id)).toMatchObject({ consumer: "poller~1000", deliveries: 1 });
    }
    await stack.post(`/v1/channels/${channel}/subscriptions/work/ack`, { ids: ids.slice(3) });
    await expectBackAfterTimeout(channel, ids.slice(0, 3), 1000, 2);
  });
});

describe("a lease taken the way pulls took them before (an XCLAIM of the idle time)", () => {
  it("is kept until it runs out, then handed out with its attempt counted", async () => {
    const channel = "old-lease";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    await pull(channel, {});
    const [id] = await publish(stack, channel, many(1));
    await pull(channel, { consumer: "old", max: 1 });
    // As the version before left it: the idle time set to LEASE_BASE_MS - 60 s.
    const group = await groupOf(stack, channel, "work");
    const stream = stack.keys.channel(channel);
    const claim = (idle: number) =>
      stack.redis.call("XCLAIM", stream, group, "old", "0", id!, "IDLE", String(idle), "JUSTID");
    await claim(LEASE_BASE_MS - 60_000);
    const look = () =>
      stack.post(`/v1/channels/${channel}/subscriptions/work/nack`, { ids: ["1-1"] });
    await look();
    expect((await pull(channel, { consumer: "b", max: 10 })).messages).toEqual([]);
    await claim(LEASE_BASE_MS); // its time has come
    await look();
    const again = await pull(channel, { consumer: "b", max: 10 });
    expect(again.messages.map((m) => [m.id, m.attempt])).toEqual([[id, 2]]);
  });
});

/**
 * `ids` are leased for `visibilityTimeoutMs` (not a day): another consumer's pull that looks gets
 * none of them before it runs out, and all of them, at `attempt`, after.
 */
async function expectBackAfterTimeout(
  channel: string,
  ids: string[],
  visibilityTimeoutMs: number,
  attempt: number,
) {
  // A nack, even of an id that is not pending, makes the next pull here look for expired leases.
  const look = () =>
    stack.post(`/v1/channels/${channel}/subscriptions/work/nack`, { ids: ["1-1"] });
  await look();
  expect((await pull(channel, { consumer: "b", max: 10 })).messages).toEqual([]);
  // A consumer's message is visible again when its idle time, from the read, reaches its
  // visibility timeout.
  const pending = await pendingOf(channel);
  const idles = ids.map((id) => pending.get(id)!.idle);
  expect(Math.max(...idles)).toBeLessThan(visibilityTimeoutMs);
  await new Promise((resolve) =>
    setTimeout(resolve, visibilityTimeoutMs - Math.min(...idles) + 50),
  );
  await look();
  const again = await pull(channel, { consumer: "b", max: 10 });
  expect(again.messages.map((m) => [m.id, m.attempt])).toEqual(ids.map((id) => [id, attempt]));
}
