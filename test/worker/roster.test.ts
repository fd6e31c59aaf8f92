// A channel's roster, kept per isolate (shared/roster.ts): what a publish costs with it, and what
// a copy up to a second old cannot lose. "Another isolate" is this process: the product's own
// publish (shared/streams.ts) with a Rosters of its own, against the same Redis as the Worker.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rosterMember } from "../../shared/keys.ts";
import { REWAKE_LUA } from "../../shared/lua/rewake.ts";
import type { Db } from "../../shared/redis.ts";
import { ROSTER_TTL_MS, Rosters } from "../../shared/roster.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { dbOf, publishThrough as publishWith } from "../helpers/roster.ts";
import { fireCron } from "../helpers/schedules.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let db: Db;
beforeAll(async () => {
  stack = await startStack({
    vars: { TRIM_MIN_INTERVAL_MS: "3600000", EVENTS_CHANNEL: "none" },
  });
  receiver = await startReceiver();
  await loadScripts(stack);
  db = dbOf(stack);
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

/** A publish of one message through `isolate`'s copies, at `now`. */
const publishThrough = (isolate: Rosters, channel: string, data: unknown, now: number) =>
  publishWith(stack, db, isolate, channel, data, now);

describe("a single publish", () => {
  it("costs its script and its XADD through an isolate holding the roster, and reads it again once it is a second old", async () => {
    const isolate = new Rosters();
    const t = Date.now();
    await publishThrough(isolate, "alone", 0, t); // the channel made, its roster read
    const warm = await countCommands(stack.redis, () => publishThrough(isolate, "alone", 1, t + 1));
    expect(warm.byCommand).toEqual({ evalsha: 1, xadd: 1 });
    const later = t + ROSTER_TTL_MS - 1;
    const still = await countCommands(stack.redis, () =>
      publishThrough(isolate, "alone", 2, later),
    );
    expect(still.byCommand).toEqual({ evalsha: 1, xadd: 1 });
    const aged = t + ROSTER_TTL_MS;
    const again = await countCommands(stack.redis, () => publishThrough(isolate, "alone", 3, aged));
    expect(again.byCommand).toEqual({ evalsha: 1, xadd: 1, hgetall: 1 });
  });

  it("through the Worker, costs 2 commands in all, kick included, on a channel without subscriptions", async () => {
    await publish(stack, "worker-alone", [{ data: 0 }]);
    const counted = await countCommands(stack.redis, () =>
      publish(stack, "worker-alone", [{ data: 1 }]),
    );
    expect(counted.byCommand).toEqual({ evalsha: 1, xadd: 1 });
  });
});

describe("a copy up to a second old", () => {
  it("misses a subscription made through another isolate, and its roster timer delivers what it missed", async () => {
    const isolate = new Rosters();
    const t = Date.now();
    await publishThrough(isolate, "late", "before", t); // this isolate's copy: nobody subscribes
    receiver.setSecret((await subscribe(stack, "late", { name: "new", url: receiver.url })).secret);
    const timerAt = Number(await stack.redis.zscore(stack.keys.due(), rosterMember("late")));
    expect(timerAt).toBeGreaterThan(t);

    // Within the copy's second, a publish through it does not know the subscription: nothing
    // wakes it (no wake member), so only the timer can deliver what it appended.
    const missed = await publishThrough(isolate, "late", "missed", t + 1);
    expect(missed.duplicate === false && missed.woken).toEqual([]);
    expect(await stack.redis.zscore(stack.keys.due(), "wake:late/new")).toBeNull();
    await fireCron(stack, timerAt);
    await receiver.waitFor((r) => r.messages().some((m) => m.data === "missed"));
    const got = receiver.requests.filter((r) => r.body?.subscription === "new");
    expect(got.flatMap((r) => r.body!.messages.map((m) => m.data))).toEqual(["missed"]);
    expect(got.every((r) => r.verified)).toBe(true);
    expect(await stack.redis.zscore(stack.keys.due(), rosterMember("late"))).toBeNull();
  });

  it("delivers what it missed when the roster timer's reply is lost: the repeat wakes nobody twice and kicks whom the first woke", async () => {
    const isolate = new Rosters();
    const t = Date.now();
    await publishThrough(isolate, "late-lost", "before", t);
    const sub = await subscribe(stack, "late-lost", { name: "n", url: receiver.url });
    receiver.setSecret(sub.secret);
    const timerAt = Number(await stack.redis.zscore(stack.keys.due(), rosterMember("late-lost")));
    await publishThrough(isolate, "late-lost", "missed too", t + 1);
    stack.bridge.faults.add({ kind: "drop-reply", match: runsScript(REWAKE_LUA), times: 1 });
    const injected = await injectedDuring(stack, () => fireCron(stack, timerAt));
    expect(injected["drop-reply"]).toBe(1);
    // No pass: the repeat's kick delivers it.
    await receiver.waitFor((r) => r.messages().some((m) => m.data === "missed too"));
    const got = receiver.requests.filter((r) => r.body?.subscription === "n");
    expect(got.flatMap((r) => r.body!.messages.map((m) => m.data))).toEqual(["missed too"]);
    expect(await stack.redis.zscore(stack.keys.due(), rosterMember("late-lost"))).toBeNull();
  });

  it("misses a resume through another isolate, and the roster timer delivers what it missed", async () => {
    await subscribe(stack, "resumed", { name: "r", url: receiver.url });
    const pause = await stack.api("/v1/channels/resumed/subscriptions/r", {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: true }),
    });
    expect(pause.status).toBe(200);
    const isolate = new Rosters();
    const t = Date.now();
    await publishThrough(isolate, "resumed", "while paused", t); // its copy: r is paused
    const resume = await stack.api("/v1/channels/resumed/subscriptions/r", {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: false }),
    });
    expect(resume.status).toBe(200);
    await receiver.waitFor((r) => r.messages().some((m) => m.data === "while paused"));
    const timerAt = Number(await stack.redis.zscore(stack.keys.due(), rosterMember("resumed")));
    expect(timerAt).toBeGreaterThan(t);

    const missed = await publishThrough(isolate, "resumed", "after resume", t + 1);
    expect(missed.duplicate === false && missed.woken).toEqual([]);
    await fireCron(stack, timerAt);
    await receiver.waitFor((r) => r.messages().some((m) => m.data === "after resume"));
  });

  it("is not needed for a channel nobody published to lately: no roster timer, no visit", async () => {
    await subscribe(stack, "quiet", { name: "q", url: receiver.url });
    expect(await stack.redis.zscore(stack.keys.due(), rosterMember("quiet"))).toBeNull();
  });

  it("wakes a deleted subscription at most: nothing is delivered to it after its DELETE answered", async () => {
    await subscribe(stack, "gone", { name: "g", url: receiver.url });
    const isolate = new Rosters();
    const t = Date.now();
    await publishThrough(isolate, "gone", "first", t); // its copy holds g
    expect((await runPass(stack)).delivered).toBe(1);
    const removed = await stack.api("/v1/channels/gone/subscriptions/g", { method: "DELETE" });
    expect(removed.status).toBe(204);
    const stale = await publishThrough(isolate, "gone", "after delete", t + 1);
    expect(stale.duplicate === false && stale.woken.map((w) => w.name)).toEqual(["g"]);
    const summary = await runPass(stack);
    expect(summary.delivered).toBe(0);
    expect(receiver.messages().filter((m) => m.data === "after delete")).toEqual([]);
    // The pass cleared the woken member of the subscription that is gone.
    const due = await stack.redis.zrange(stack.keys.due(), "0", "-1");
    expect(due.filter((m) => m.includes("gone/"))).toEqual([]);
  });

  it("keeps the trim clock it sees: a trim another isolate made is asked once (HGET), then known", async () => {
    const t = Date.now();
    await publishThrough(new Rosters(), "clock", 0, t); // the channel, with its trim clock
    const subs = stack.keys.subscriptions("clock");
    await stack.redis.hset(subs, "~trim", `${t + 500}:1:${t}`); // the next trim at t + 500
    const stale = new Rosters();
    await publishThrough(stale, "clock", 1, t); // its copy: a trim at t + 500
    // Another isolate trims at t + 600 and sets the next an hour later.
    await stack.redis.hset(subs, "~trim", `${t + 3_600_600}:2:${t + 600}`);
    // The copy says a trim is due: the stored clock says not, and no trim runs.
    const asked = await countCommands(stack.redis, () =>
      publishThrough(stale, "clock", 2, t + 600),
    );
    expect(asked.byCommand).toEqual({ evalsha: 1, xadd: 1, hget: 1 });
    // The copy learnt it: the next publish asks nothing.
    const known = await countCommands(stack.redis, () =>
      publishThrough(stale, "clock", 3, t + 601),
    );
    expect(known.byCommand).toEqual({ evalsha: 1, xadd: 1 });
  });
});
