// Pulls whose Redis reply is lost, against the real stack: the bridge runs the request and hangs
// up (drop-reply) on exactly the read a rule is about. Neither kind of read may lose a message,
// leave one pending without a lease that runs out, or hand one to two consumers within its
// visibility timeout:
//
//   the pull script (lua/pull.ts)  read and lease in one step: the Worker runs it again, and what
//                                  the lost run took stays leased to its consumer until the
//                                  visibility timeout, then comes back with its attempt counted
//   XREADGROUP on its own (a pull  sent once; the Worker adopts what the lost read took (the
//   that looks, a long-poll tick)  consumer's entries without a lease) and hands it out at once
//
// A pull looks for expired leases only on an isolate's first pull of a subscription and after a
// nack through it (PULL_LOOK_EVERY_MS an hour), so which read a pull makes is known here.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PULL_LUA } from "../../shared/lua/pull.ts";
import { LEASE_BASE_MS } from "../../shared/pull-lease.ts";
import { injectedDuring, loadScripts, runsScript, sends } from "../helpers/faults.ts";
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
// The pull script is loaded up front, so each of its calls is one EVALSHA that runs.
beforeEach(async () => {
  stack.bridge.faults.clear();
  await loadScripts(stack, [PULL_LUA]);
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

describe("a pull whose read reply is lost", () => {
  it("keeps what the lost pull script took leased to its consumer, until the visibility timeout", async () => {
    const channel = "lost-script";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    await pull(channel, {}); // the isolate's first pull looked; the next ones run the script
    const ids = await publish(stack, channel, many(6));
    const visibilityTimeoutMs = 30_000;
    const stream = stack.keys.channel(channel);
    stack.bridge.faults.add({ kind: "drop-reply", match: runsScript(PULL_LUA, stream), times: 1 });
    const started = Date.now();
    let got: Pulled[] = [];
    const injected = await injectedDuring(stack, async () => {
      ({ messages: got } = await pull(channel, { consumer: "a", max: 3, visibilityTimeoutMs }));
    });
    expect(injected["drop-reply"]).toBe(1);
    // The Worker ran the script again: it answered with the next three.
    expect(got.map((m) => [m.id, m.attempt])).toEqual(ids.slice(3).map((id) => [id, 1]));
    // Another consumer gets none of the six meanwhile.
    expect((await pull(channel, { consumer: "b", max: 10 })).messages).toEqual([]);
    // The first three are pending for "a" under a lease that runs out visibilityTimeoutMs after
    // the lost run (idle reaches LEASE_BASE_MS then), with their first delivery counted.
    const pending = await pendingOf(channel);
    const since = Date.now() - started;
    for (const id of ids.slice(0, 3)) {
      const entry = pending.get(id);
      expect(entry).toMatchObject({ consumer: "a", deliveries: 1 });
      expect(entry!.idle).toBeGreaterThanOrEqual(LEASE_BASE_MS - visibilityTimeoutMs);
      expect(entry!.idle).toBeLessThanOrEqual(LEASE_BASE_MS - visibilityTimeoutMs + since);
    }
    expect(pending.size).toBe(6);
  });

  it("hands them back after the visibility timeout, with the lost attempt counted", async () => {
    const channel = "lost-script-back";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    await pull(channel, {});
    const ids = await publish(stack, channel, many(2));
    const stream = stack.keys.channel(channel);
    stack.bridge.faults.add({ kind: "drop-reply", match: runsScript(PULL_LUA, stream), times: 1 });
    const first = await pull(channel, { consumer: "a", max: 1, visibilityTimeoutMs: 1000 });
    expect(first.messages.map((m) => m.id)).toEqual([ids[1]]);
    await stack.post(`/v1/channels/${channel}/subscriptions/work/ack`, { ids: [ids[1]] });
    // The lease of the lost run's message runs out when its idle time reaches LEASE_BASE_MS.
    const idle = (await pendingOf(channel)).get(ids[0]!)!.idle;
    expect(idle).toBeGreaterThanOrEqual(LEASE_BASE_MS - 1000); // leased for 1 s, not a day
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, LEASE_BASE_MS - idle) + 50));
    // A nack (even of an id no longer pending) makes the next pull here look for expired leases.
    await stack.post(`/v1/channels/${channel}/subscriptions/work/nack`, { ids: [ids[1]] });
    const again = await pull(channel, { consumer: "b" });
    expect(again.messages.map((m) => [m.id, m.attempt])).toEqual([[ids[0], 2]]);
  });

  it("adopts what a lost XREADGROUP took and hands it out at once, to its consumer only", async () => {
    const channel = "lost-read";
    await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
    const ids = await publish(stack, channel, many(5));
    const stream = stack.keys.channel(channel);
    stack.bridge.faults.add({ kind: "drop-reply", match: sends("XREADGROUP", stream), times: 1 });
    let got: Pulled[] = [];
    const injected = await injectedDuring(stack, async () => {
      // The isolate's first pull of the subscription looks: XPENDING, then XREADGROUP on its own.
      ({ messages: got } = await pull(channel, { consumer: "a", max: 3 }));
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(got.map((m) => [m.id, m.attempt])).toEqual(ids.slice(0, 3).map((id) => [id, 1]));
    const rest = await pull(channel, { consumer: "b", max: 10 });
    expect(rest.messages.map((m) => m.id)).toEqual(ids.slice(3));
    const pending = await pendingOf(channel);
    for (const id of ids.slice(0, 3)) expect(pending.get(id)?.consumer).toBe("a");
    expect(await getSubscription(stack, channel, "work")).toMatchObject({ pending: 5, lag: 0 });
  });
});
