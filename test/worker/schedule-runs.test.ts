// Schedules run by the cron on the real stack: the cron trigger is dispatched through wrangler's
// harness with its scheduled time passed in (the minute a real cron would fire at), so minutes,
// outages and DST changes take no waiting. What a run published is read back from the channel's
// history. Delivery of a run to a subscriber: schedule-delivery.test.ts.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { SCHEDULE_NEXT_LUA } from "../../shared/lua/schedule-next.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { until } from "../helpers/schedule.ts";
import {
  changeSchedule,
  createSchedule,
  deleteAllSchedules,
  fireCron,
  getSchedule,
  historyOf,
  MINUTE_MS,
  memberAt,
} from "../helpers/schedules.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish } from "../helpers/subscriptions.ts";

let stack: Stack;
beforeAll(async () => {
  // No trim comes due during a count (lua/trim.ts), so a run's cost is what it names. No age
  // limit: the crons below come months ahead of the clock that stamps the runs' ids, and the
  // sweep (worker/sweep.ts) would trim every run as months old.
  stack = await startStack({
    vars: { TRIM_MIN_INTERVAL_MS: "3600000", RETENTION_MAX_AGE_MS: "none" },
  });
  await loadScripts(stack, [PUBLISH_LUA, SCHEDULE_NEXT_LUA]);
});
afterAll(() => stack?.stop());
afterEach(() => deleteAllSchedules(stack));

let counter = 0;
/** A schedule on a channel of its own; its first run in `at`. */
async function scheduled(body: Record<string, unknown>) {
  const name = `s${++counter}`;
  const channel = `runs-${counter}`;
  const created = await createSchedule(stack, {
    name,
    channel,
    message: { type: "tick", data: { n: counter } },
    ...body,
  });
  return { name, channel, at: Date.parse(created.nextRunAt ?? "") };
}

const iso = (ms: number) => new Date(ms).toISOString();

describe("a schedule * * * * * in America/New_York", () => {
  it("publishes once a minute, with two cron invocations overlapping every minute", async () => {
    const { name, channel, at } = await scheduled({
      cron: "* * * * *",
      timezone: "America/New_York",
    });
    for (let minute = 0; minute < 3; minute++) {
      const time = at + minute * MINUTE_MS;
      await Promise.all([fireCron(stack, time), fireCron(stack, time)]);
      // A cron retried after both had finished.
      await fireCron(stack, time);
      expect((await historyOf(stack, channel)).length).toBe(minute + 1);
    }
    const history = await historyOf(stack, channel);
    expect(history.map((m) => [m.type, m.data])).toEqual([
      ["tick", { n: counter }],
      ["tick", { n: counter }],
      ["tick", { n: counter }],
    ]);
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: iso(at + 2 * MINUTE_MS),
      nextRunAt: iso(at + 3 * MINUTE_MS),
    });
  });

  it("publishes a stretch of missed minutes once, as the latest of them", async () => {
    const { name, channel, at } = await scheduled({
      cron: "* * * * *",
      timezone: "America/New_York",
    });
    // The Worker was down for ten minutes: the cron comes back half a minute into the eleventh.
    const back = at + 10 * MINUTE_MS + 30_000;
    await fireCron(stack, back);
    await fireCron(stack, back);
    expect((await historyOf(stack, channel)).length).toBe(1);
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: iso(at + 10 * MINUTE_MS),
      nextRunAt: iso(at + 11 * MINUTE_MS),
    });
  });
});

describe("a schedule's ordering key", () => {
  it("is published with every run, and shown with the schedule", async () => {
    const { name, channel, at } = await scheduled({
      cron: "0 * * * *",
      message: { data: { n: 1 }, orderingKey: "nightly" },
    });
    expect((await getSchedule(stack, name)).message).toEqual({
      type: null,
      data: { n: 1 },
      orderingKey: "nightly",
    });
    await fireCron(stack, at);
    const history = await historyOf(stack, channel);
    expect(history.map((m) => (m as { orderingKey?: string }).orderingKey)).toEqual(["nightly"]);
  });
});

describe("a run missed while the Worker was down", () => {
  it("is published when the cron comes back, carrying its own time", async () => {
    const { name, channel, at } = await scheduled({ cron: "0 * * * *" });
    await fireCron(stack, at - MINUTE_MS); // the minute before: nothing due
    expect(await historyOf(stack, channel)).toEqual([]);
    await fireCron(stack, at + 7 * MINUTE_MS);
    expect((await historyOf(stack, channel)).length).toBe(1);
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: iso(at),
      nextRunAt: iso(at + 60 * MINUTE_MS),
    });
  });
});

describe("daylight saving time", () => {
  // The API takes its time from the clock; the first run is set as if the schedule had been made
  // on 2027-03-12 (New York's clocks skip 02:00-03:00 on March 14, and repeat 01:00-02:00 on
  // November 7).
  async function startingAt(body: Record<string, unknown>, first: string) {
    const s = await scheduled({ timezone: "America/New_York", ...body });
    await stack.redis.zadd(stack.keys.due(), Date.parse(first), `schedule:${s.name}`);
    return s;
  }

  it("runs 30 2 * * * at 03:00 EDT on the day 02:30 does not exist, then at 02:30 again", async () => {
    const { name, channel } = await startingAt({ cron: "30 2 * * *" }, "2027-03-13T07:30:00Z");
    await fireCron(stack, Date.parse("2027-03-13T07:30:00Z"));
    expect((await getSchedule(stack, name)).nextRunAt).toBe("2027-03-14T07:00:00.000Z");
    await fireCron(stack, Date.parse("2027-03-14T06:30:00Z")); // 01:30 EST: not yet
    expect((await historyOf(stack, channel)).length).toBe(1);
    await fireCron(stack, Date.parse("2027-03-14T07:00:00Z"));
    expect((await historyOf(stack, channel)).length).toBe(2);
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: "2027-03-14T07:00:00.000Z",
      nextRunAt: "2027-03-15T06:30:00.000Z",
    });
  });

  it("runs 30 1 * * * once on the day 01:30 happens twice, at the first", async () => {
    const { name, channel } = await startingAt({ cron: "30 1 * * *" }, "2027-11-07T05:30:00Z");
    await fireCron(stack, Date.parse("2027-11-07T05:30:00Z")); // 01:30 EDT
    expect((await getSchedule(stack, name)).nextRunAt).toBe("2027-11-08T06:30:00.000Z");
    await fireCron(stack, Date.parse("2027-11-07T06:30:00Z")); // 01:30 EST: no run
    expect((await historyOf(stack, channel)).length).toBe(1);
  });
});

describe("pausing, changing and deleting", () => {
  it("publishes nothing while paused, and nothing it missed once resumed", async () => {
    const { name, channel, at } = await scheduled({ cron: "* * * * *" });
    await changeSchedule(stack, name, { paused: true });
    await fireCron(stack, at);
    await fireCron(stack, at + MINUTE_MS);
    expect(await historyOf(stack, channel)).toEqual([]);
    const resumedAt = Date.now();
    const next = Date.parse((await changeSchedule(stack, name, { paused: false })).nextRunAt!);
    expect(next).toBeGreaterThan(resumedAt - 1000);
    await fireCron(stack, next);
    expect((await historyOf(stack, channel)).length).toBe(1);
    expect((await getSchedule(stack, name)).lastRunAt).toBe(iso(next));
  });

  it("runs a changed expression at its new time only", async () => {
    const { name, channel, at } = await scheduled({ cron: "* * * * *" });
    const changed = await changeSchedule(stack, name, { cron: "0 0 1 1 *" });
    await fireCron(stack, at);
    expect(await historyOf(stack, channel)).toEqual([]);
    expect(await memberAt(stack, name)).toBe(Date.parse(changed.nextRunAt!));
  });

  it("never publishes a run from before its member's time", async () => {
    // As a cron finds it when a PATCH changed `30 * * * *` to `0 * * * *` after its ZRANGE read
    // the member at hh:30: the latest run of the new expression (hh:00) came before that time.
    const { name, channel, at } = await scheduled({ cron: "0 * * * *" });
    await stack.redis.zadd(stack.keys.due(), at + 30 * MINUTE_MS, `schedule:${name}`);
    await fireCron(stack, at + 31 * MINUTE_MS);
    expect(await historyOf(stack, channel)).toEqual([]);
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: null,
      nextRunAt: iso(at + 60 * MINUTE_MS),
    });
  });

  it("publishes nothing once deleted", async () => {
    const { name, channel, at } = await scheduled({ cron: "* * * * *" });
    expect((await stack.api(`/v1/schedules/${name}`, { method: "DELETE" })).status).toBe(204);
    await fireCron(stack, at);
    expect(await historyOf(stack, channel)).toEqual([]);
    expect(await memberAt(stack, name)).toBeNull();
  });

  it("makes its channel again when the channel was deleted", async () => {
    const { channel, at } = await scheduled({ cron: "* * * * *" });
    await publish(stack, channel, [{ data: "before" }]);
    expect((await stack.api(`/v1/channels/${channel}`, { method: "DELETE" })).status).toBe(200);
    await fireCron(stack, at);
    expect((await historyOf(stack, channel)).map((m) => m.data)).toEqual([{ n: counter }]);
  });
});

describe("races and lost replies", () => {
  it("leaves the next run a PATCH set while the run was publishing", async () => {
    const { name, channel, at } = await scheduled({ cron: "* * * * *" });
    // The run's last step (moving the member on) waits while the PATCH moves the member first.
    const match = runsScript(SCHEDULE_NEXT_LUA, `schedule:${name}`);
    stack.bridge.faults.add({ kind: "delay", delayMs: 1000, match, times: 1 });
    const run = fireCron(stack, at);
    await until("the run published", async () => (await historyOf(stack, channel)).length === 1);
    const changed = await changeSchedule(stack, name, { cron: "0 0 1 1 *" });
    await run;
    expect(await memberAt(stack, name)).toBe(Date.parse(changed.nextRunAt!));
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: iso(at),
      nextRunAt: changed.nextRunAt,
    });
  });

  it("publishes once when the replies of the publish and of the move are lost", async () => {
    const { name, channel, at } = await scheduled({ cron: "* * * * *" });
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(PUBLISH_LUA, channel),
      times: 1,
    });
    const next = runsScript(SCHEDULE_NEXT_LUA, `schedule:${name}`);
    stack.bridge.faults.add({ kind: "drop-reply", match: next, times: 1 });
    const injected = await injectedDuring(stack, () => fireCron(stack, at));
    expect(injected["drop-reply"]).toBe(2);
    expect((await historyOf(stack, channel)).length).toBe(1);
    expect(await getSchedule(stack, name)).toMatchObject({
      lastRunAt: iso(at),
      nextRunAt: iso(at + MINUTE_MS),
    });
  });
});

describe("the cost of the cron", () => {
  it("stays one command when no schedule is due", async () => {
    const { at } = await scheduled({ cron: "* * * * *" });
    await scheduled({ cron: "0 0 1 1 *" });
    const counted = await countCommands(stack.redis, () => fireCron(stack, at - 1));
    expect(counted.byCommand).toEqual({ zrange: 1 });
  });

  it("costs 12 commands for a run that publishes to a channel without subscribers", async () => {
    const { channel, at } = await scheduled({ cron: "* * * * *" });
    // The channel made, and its roster read into the isolate's copy (shared/roster.ts), which
    // the run's publish uses: the run is one isolate's, as the cron's is.
    await publish(stack, channel, [{ data: "the channel exists" }]);
    const counted = await countCommands(stack.redis, () => fireCron(stack, at));
    expect(counted.byCommand).toEqual({
      // What is due, and the schedule (nothing woken: the pass does not look again).
      zrange: 1,
      hget: 2,
      // The publish (lua/publish.ts) with the run's Idempotency-Key: the key looked up and set,
      // the message appended.
      evalsha: 2,
      get: 1,
      set: 1,
      xadd: 1,
      // The run recorded and the member moved on (lua/schedule-next.ts).
      hexists: 1,
      hset: 1,
      zscore: 1,
      zadd: 1,
    });
    expect(counted.total).toBe(12);
  });
});
