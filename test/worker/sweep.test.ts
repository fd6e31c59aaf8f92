// The sweep: retention enforced on channels nobody publishes to (worker/sweep.ts, lua/sweep.ts),
// by the same trim step as publish's, found through the channel's member "sweep:<ch>" in
// {p}:due by the cron's one ZRANGE.
//
// Time is passed in, not waited for: the cron's scheduled time is the sweep's clock, so a cron
// "8 days later" sweeps as it would then. Defaults: retention 7 days, MAX_UNDELIVERED_AGE_MS 14
// days, so a channel's sweep is due at most a tenth of 7 days (16.8 h) after its last trim.
// No kick: delivery happens only in the passes a test runs.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rosterMember, sweepMember } from "../../shared/keys.ts";
import { SWEEP_LUA } from "../../shared/lua/sweep.ts";
import { ROSTER_TTL_MS } from "../../shared/roster.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import {
  dueAt,
  getSubscription,
  publish,
  runPass,
  subscribe,
  waitUntil,
} from "../helpers/subscriptions.ts";

const DAY_MS = 86_400_000;
const GAP_MS = (7 * DAY_MS) / 10;

let stack: Stack;
let receiver: TestReceiver;
beforeAll(async () => {
  stack = await startStack({ vars: { KICK_ON_PUBLISH: "false", EVENTS_CHANNEL: "none" } });
  receiver = await startReceiver();
  await loadScripts(stack, [SWEEP_LUA]);
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

/** Dispatches the cron as if it ran at `at` (ms): its scheduled time is the timers' clock. */
const cronAt = (at: number) =>
  stack.harness.getWorker().scheduled({ cron: "* * * * *", scheduledTime: new Date(at) });
const xlen = (channel: string) => stack.redis.xlen(stack.keys.channel(channel));
const sweepDueAt = (channel: string) => dueAt(stack, sweepMember(channel));
const messages = (count: number) => Array.from({ length: count }, (_, n) => ({ data: { n } }));

async function setRetention(channel: string, retention: Record<string, number | null>) {
  const res = await stack.api(`/v1/channels/${channel}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ retention }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

// Cost first, while no other channel's sweep is due.
describe("what the cron costs", () => {
  it("is its one ZRANGE when no sweep is due, however many channels have one", async () => {
    for (let i = 0; i < 20; i++) await publish(stack, `idle-${i}`, messages(3));
    expect(await sweepDueAt("idle-0")).not.toBeNull();
    const counted = await countCommands(stack.redis, () => cronAt(Date.now()));
    expect(counted.byCommand).toEqual({ zrange: 1 });
  });

  it("is 10 commands per channel swept (with one subscription, no dead letters) besides it", async () => {
    for (const channel of ["costly-1", "costly-2"]) {
      await publish(stack, channel, messages(5));
      // From the latest: it needs none of them, so nothing holds the trim back.
      await subscribe(stack, channel, { name: "sub", url: receiver.url });
    }
    // Made within a second of a publish, each subscription set its channel's roster timer
    // (shared/roster.ts): run here, so that the counted cron is the sweeps alone.
    await cronAt(Date.now() + 2 * ROSTER_TTL_MS);
    for (const channel of ["costly-1", "costly-2"]) {
      expect(await stack.redis.zscore(stack.keys.due(), rosterMember(channel))).toBeNull();
      await setRetention(channel, { maxAgeMs: 60_000 }); // due now: the next cron applies it
    }
    const counted = await countCommands(stack.redis, () => cronAt(Date.now() + 120_000));
    expect(await xlen("costly-1")).toBe(0);
    expect(await xlen("costly-2")).toBe(0);
    expect(counted.byCommand).toEqual({
      // The cron's ZRANGE finds both (and none of the idle channels, due in 16.8 h).
      zrange: 1,
      // Each: its subscriptions (HKEYS), the script; in it, the channel still there, its own
      // retention and trim clock, the trim step (the groups, the length, one XTRIM by age, the
      // clock), the subscription's dead letters (none), and the member: nothing left, removed.
      hkeys: 2,
      evalsha: 2,
      exists: 2,
      hmget: 2,
      "xinfo|groups": 2,
      xlen: 2,
      xtrim: 2,
      hset: 2,
      xrange: 2,
      zrem: 2,
    });
    expect(counted.total).toBe(1 + 2 * 10);
  });
});

describe("a silent channel past its retention", () => {
  it("is trimmed by the sweep, which then waits for the next publish", async () => {
    const channel = "silent";
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 100 });
    const ids = await publish(stack, channel, messages(300));
    expect((await runPass(stack)).delivered).toBe(300); // acknowledged: nothing protects them
    // A minute later nothing is due: the channel is left alone.
    await cronAt(Date.now() + 60_000);
    expect(await xlen(channel)).toBe(ids.length);

    const at = Date.now() + 8 * DAY_MS;
    await cronAt(at);
    expect(await xlen(channel)).toBe(0);
    // Nothing a sweep could remove before a publish: no member, and the trim clock due at once.
    expect(await sweepDueAt(channel)).toBeNull();
    const clock = await stack.redis.hget(stack.keys.subscriptions(channel), "~trim");
    expect(clock).toBe(`${at}:0:${at}`);
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({ expired: 0 });
  });

  it("keeps what a subscription has not acknowledged until MAX_UNDELIVERED_AGE_MS, then counts it", async () => {
    const channel = "unread";
    // A pull subscription: the cron's pass never delivers to it, so nothing is acknowledged.
    await subscribe(stack, channel, { name: "sub", mode: "pull" });
    const ids = await publish(stack, channel, messages(200));
    const start = Date.now();

    await cronAt(start + 8 * DAY_MS); // past the retention, within MAX_UNDELIVERED_AGE_MS
    expect(await xlen(channel)).toBe(ids.length);
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({ expired: 0 });
    // Still holding messages with retention: swept again a gap later.
    expect(await sweepDueAt(channel)).toBe(start + 8 * DAY_MS + GAP_MS);

    const at = start + 15 * DAY_MS;
    await cronAt(at);
    expect(await xlen(channel)).toBe(0);
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({
      expired: ids.length,
      lastExpiredAt: new Date(at).toISOString(),
    });
  });

  it("keeps a channel whose retention is longer", async () => {
    const channel = "kept";
    const ids = await publish(stack, channel, messages(10));
    await setRetention(channel, { maxAgeMs: 30 * DAY_MS });
    const at = Date.now() + 8 * DAY_MS;
    await cronAt(at);
    expect(await xlen(channel)).toBe(ids.length);
    // A tenth of its own age limit (30 days), bounded by MAX_UNDELIVERED_AGE_MS's (14 days).
    expect(await sweepDueAt(channel)).toBe(at + (14 * DAY_MS) / 10);
  });
});

describe("a sweep run twice", () => {
  /** A channel whose pull subscription never read its 100 messages; the time to expire them. */
  async function lagging(channel: string) {
    await subscribe(stack, channel, { name: "sub", mode: "pull" });
    const ids = await publish(stack, channel, messages(100));
    return { ids, at: Date.now() + 15 * DAY_MS };
  }

  it("after a lost reply trims and counts once", async () => {
    const channel = "lost-reply";
    const { ids, at } = await lagging(channel);
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(SWEEP_LUA, stack.keys.channel(channel)),
      times: 1,
    });
    const injected = await injectedDuring(stack, () => cronAt(at));
    stack.bridge.faults.clear();
    expect(injected["drop-reply"]).toBe(1);
    expect(await xlen(channel)).toBe(0);
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({ expired: ids.length });
  });

  it("by two crons at once trims and counts once", async () => {
    const channel = "overlap";
    const { ids, at } = await lagging(channel);
    await Promise.all([cronAt(at), cronAt(at)]);
    expect(await xlen(channel)).toBe(0);
    expect(await getSubscription(stack, channel, "sub")).toMatchObject({ expired: ids.length });
  });
});

describe("the sweep member", () => {
  it("is set within a gap by a channel's first publish, and by the subscribe that makes one", async () => {
    const before = Date.now();
    await publish(stack, "first-publish", messages(1));
    await subscribe(stack, "first-subscribe", { name: "sub", mode: "pull" });
    const after = Date.now();
    for (const channel of ["first-publish", "first-subscribe"]) {
      const at = (await sweepDueAt(channel))!;
      expect(at).toBeGreaterThanOrEqual(before + GAP_MS);
      expect(at).toBeLessThanOrEqual(after + GAP_MS);
    }
  });

  it("comes back with the next publish's trim, for a channel made before the sweep", async () => {
    const channel = "legacy";
    // As an older version left it, written behind the Worker's back (no roster copy of it):
    // two messages, registered, no member, and a trim clock long due.
    for (const n of [1, 2]) await stack.redis.xadd(stack.keys.channel(channel), "*", "d", `${n}`);
    await stack.redis.sadd(stack.keys.channels(), channel);
    await stack.redis.hset(stack.keys.subscriptions(channel), "~trim", "1000:2:0");
    expect(await sweepDueAt(channel)).toBeNull();
    const before = Date.now();
    await publish(stack, channel, messages(1));
    expect(await sweepDueAt(channel)).toBeGreaterThanOrEqual(before + GAP_MS);
  });

  it("is due at once after PATCH retention, so the next cron applies the new retention", async () => {
    const channel = "patched";
    await publish(stack, channel, messages(1000));
    const before = Date.now();
    await setRetention(channel, { maxMessages: 100 });
    expect(await sweepDueAt(channel)).toBeLessThanOrEqual(Date.now());
    expect(await sweepDueAt(channel)).toBeGreaterThanOrEqual(before);
    await cronAt(Date.now());
    // Whole stream nodes of 100 entries go, as on publish (MINID ~): exactly 100 kept here.
    expect(await xlen(channel)).toBe(100);
  });

  it("is due at once after an empty PATCH, which leaves a channel on the default retention", async () => {
    const channel = "touched";
    await publish(stack, channel, messages(1));
    const before = Date.now();
    await setRetention(channel, {});
    expect(await sweepDueAt(channel)).toBeGreaterThanOrEqual(before);
    expect(await sweepDueAt(channel)).toBeLessThanOrEqual(Date.now());
    const view = await stack.api(`/v1/channels/${channel}`);
    expect(await view.json()).toMatchObject({ retentionIsDefault: true });
  });

  it("is put back by a publish after the sweep emptied the channel", async () => {
    const channel = "refilled";
    await publish(stack, channel, messages(10));
    await setRetention(channel, { maxAgeMs: 1000 });
    const at = Date.now() + 1500;
    await cronAt(at);
    expect(await xlen(channel)).toBe(0);
    expect(await sweepDueAt(channel)).toBeNull();
    await waitUntil(at); // the trim clock the sweep left, read back above: due at `at`
    const before = Date.now();
    await publish(stack, channel, messages(1));
    // Its retention's gap: a tenth of 1 s, held to TRIM_MIN_INTERVAL_MS (1 s).
    expect(await sweepDueAt(channel)).toBeGreaterThanOrEqual(before + 1000);
    expect(await sweepDueAt(channel)).toBeLessThanOrEqual(Date.now() + 1000);
  });

  it("goes with the channel when it is deleted, and a sweep of a deleted channel writes nothing", async () => {
    const channel = "doomed";
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, messages(3));
    expect(await sweepDueAt(channel)).not.toBeNull();
    const res = await stack.api(`/v1/channels/${channel}?force=true`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await sweepDueAt(channel)).toBeNull();

    // A member left for a channel that is gone (as a deliverer's park in flight could leave):
    // the sweep removes it and brings back no key of the channel.
    await stack.redis.zadd(stack.keys.due(), Date.now(), sweepMember(channel));
    await cronAt(Date.now());
    expect(await sweepDueAt(channel)).toBeNull();
    expect(await stack.redis.keys(`*${channel}*`)).toEqual([]);
  });
});
