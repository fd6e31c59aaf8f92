// The schedule API on the real stack: create, read, list, change, delete; what it refuses, and
// that a refused request writes nothing. The runs themselves: test/worker/schedule-runs.test.ts.

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SCHEDULE_SAVE_LUA } from "../../shared/lua/schedule-save.ts";
import { injectedDuring, runsScript } from "../helpers/faults.ts";
import { as, createKey, errorOf } from "../helpers/keys.ts";
import { changedKeys, keyspace } from "../helpers/keyspace.ts";
import {
  changeSchedule,
  createSchedule,
  deleteAllSchedules,
  getSchedule,
  MINUTE_MS,
  memberAt,
  patchSchedule,
  type ScheduleJson,
} from "../helpers/schedules.ts";
import { type Stack, startStack } from "../helpers/stack.ts";

const MAX_MESSAGE_BYTES = 1024;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) } });
});
afterAll(() => stack?.stop());
afterEach(() => deleteAllSchedules(stack));

/** A valid schedule; each test changes what it is about. */
const valid = (name: string) => ({
  name,
  channel: "reports",
  cron: "0 9 * * 1-5",
  timezone: "America/New_York",
  message: { type: "report.due", data: { report: "daily" } },
});

/** The wall clock of `iso` in `timeZone`: weekday (Mon..), hour and minute. */
function localTime(iso: string, timeZone: string) {
  const parts = new Intl.DateTimeFormat("en-US", {
    timeZone,
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).formatToParts(new Date(iso));
  const part = (type: string) => parts.find((p) => p.type === type)!.value;
  return { weekday: part("weekday"), hour: Number(part("hour")), minute: Number(part("minute")) };
}

describe("creating a schedule", () => {
  it("answers 201 with its first run, at the expression's time in its time zone", async () => {
    const before = Date.now();
    const created = await createSchedule(stack, valid("weekdays"));
    expect(created).toEqual({
      ...valid("weekdays"),
      paused: false,
      nextRunAt: expect.any(String),
      lastRunAt: null,
      createdAt: expect.any(String),
      updatedAt: created.createdAt,
    });
    const next = Date.parse(created.nextRunAt!);
    expect(next).toBeGreaterThan(before);
    // The first weekday 09:00 in New York after now: never more than three days and a bit away.
    expect(next - before).toBeLessThanOrEqual(4 * 24 * 3_600_000);
    const local = localTime(created.nextRunAt!, "America/New_York");
    expect(local).toMatchObject({ hour: 9, minute: 0 });
    expect(["Mon", "Tue", "Wed", "Thu", "Fri"]).toContain(local.weekday);
    expect(await getSchedule(stack, "weekdays")).toEqual(created);
    expect(await memberAt(stack, "weekdays")).toBe(next);
  });

  it("reads the expression in UTC unless told otherwise, and a type is optional", async () => {
    const created = await createSchedule(stack, {
      name: "utc",
      channel: "reports",
      cron: "30 6 * * *",
      message: { data: [1, 2] },
    });
    expect(created).toMatchObject({ timezone: "UTC", message: { type: null, data: [1, 2] } });
    expect(created.nextRunAt).toMatch(/T06:30:00\.000Z$/);
  });

  it("keeps a paused schedule without a next run", async () => {
    const created = await createSchedule(stack, { ...valid("later"), paused: true });
    expect(created).toMatchObject({ paused: true, nextRunAt: null });
    expect(await memberAt(stack, "later")).toBeNull();
  });

  it("answers 201 once when the reply of its write is lost, and stores it once", async () => {
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(SCHEDULE_SAVE_LUA, "create", "lost"),
      times: 1,
    });
    let res: Response | undefined;
    const injected = await injectedDuring(stack, async () => {
      res = await stack.post("/v1/schedules", valid("lost"));
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(res!.status, await res!.clone().text()).toBe(201);
    expect(await getSchedule(stack, "lost")).toEqual(await res!.json());
    expect(await stack.redis.hkeys(stack.keys.schedules())).toEqual(["lost"]);
  });

  it("refuses a name that is taken with 409 schedule_exists, and changes nothing", async () => {
    await createSchedule(stack, valid("taken"));
    const before = await keyspace(stack.redis);
    const res = await stack.post("/v1/schedules", { ...valid("taken"), cron: "* * * * *" });
    expect((await errorOf(res, 409)).code).toBe("schedule_exists");
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
    expect((await getSchedule(stack, "taken")).cron).toBe("0 9 * * 1-5");
  });
});

describe("bad input: a 400 that names the field, and nothing written", () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ["a 4-field expression", { cron: "* * * *" }, "body.cron"],
    ["a 6-field expression (seconds)", { cron: "0 * * * * *" }, "body.cron"],
    ["a minute out of range", { cron: "61 * * * *" }, "body.cron"],
    ["words", { cron: "every monday" }, "body.cron"],
    ["an expression that never runs", { cron: "0 0 30 2 *" }, "body.cron"],
    ["an unknown time zone", { timezone: "Mars/Olympus" }, "body.timezone"],
    ["an offset for a time zone", { timezone: "+02:00" }, "body.timezone"],
    ["an empty time zone", { timezone: "" }, "body.timezone"],
    ["no message data", { message: { type: "a" } }, "body.message.data"],
    ["a message type with a space", { message: { type: "a b", data: 1 } }, "body.message.type"],
    ["a name with a slash", { name: "a/b" }, "body.name"],
    ["a channel name starting with a dot", { channel: ".x" }, "body.channel"],
    ["paused as a string", { paused: "yes" }, "body.paused"],
    ["an unknown field", { every: "day" }, "body"],
  ];

  it.each(cases)("refuses %s", async (_, broken, field) => {
    const before = await keyspace(stack.redis);
    const res = await stack.post("/v1/schedules", { ...valid("bad"), ...broken });
    const error = await errorOf(res, 400);
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain(`${field}:`);
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
  });

  it("says why croner refuses an expression", async () => {
    const res = await stack.post("/v1/schedules", { ...valid("bad"), cron: "61 * * * *" });
    expect((await errorOf(res, 400)).message).toMatch(/body\.cron: .*minute/i);
  });

  it("refuses message data over MAX_MESSAGE_BYTES with 413, as a publish does", async () => {
    const before = await keyspace(stack.redis);
    const data = "x".repeat(MAX_MESSAGE_BYTES);
    const res = await stack.post("/v1/schedules", { ...valid("big"), message: { data } });
    const error = await errorOf(res, 413);
    expect(error.message).toContain("message.data is 1026 bytes as JSON; the limit is 1024");
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
    const publish = await stack.post("/v1/channels/reports/messages", { data });
    expect(await errorOf(publish, 413)).toMatchObject({ code: error.code });
  });

  it("refuses a PATCH without fields, or with a bad expression, and writes nothing", async () => {
    await createSchedule(stack, valid("kept"));
    const before = await keyspace(stack.redis);
    for (const change of [{}, { cron: "* * *" }, { timezone: "Nowhere/Town" }, { name: "x" }]) {
      expect((await errorOf(await patchSchedule(stack, "kept", change), 400)).code).toBe(
        "invalid_request",
      );
    }
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
  });
});

describe("reading schedules", () => {
  it("answers 404 schedule_not_found for a name nobody made", async () => {
    expect((await errorOf(await stack.api("/v1/schedules/nobody"), 404)).code).toBe(
      "schedule_not_found",
    );
  });

  it("lists them by name, a page at a time", async () => {
    for (const name of ["e", "b", "d", "a", "c"]) await createSchedule(stack, valid(name));
    const names: string[][] = [];
    let query = "?limit=2";
    for (;;) {
      const res = await stack.api(`/v1/schedules${query}`);
      const page = (await res.json()) as { schedules: ScheduleJson[]; next: string | null };
      names.push(page.schedules.map((s) => s.name));
      if (page.next === null) break;
      query = `?limit=2&after=${page.next}`;
    }
    expect(names).toEqual([["a", "b"], ["c", "d"], ["e"]]);
    const all = (await (await stack.api("/v1/schedules")).json()) as { schedules: ScheduleJson[] };
    expect(all.schedules[0]).toEqual(await getSchedule(stack, "a"));
  });
});

describe("who may", () => {
  it("takes the publish scope on the schedule's channel to make or change one", async () => {
    const key = await createKey(stack, {
      name: "reports-publisher",
      scopes: ["publish"],
      channels: ["reports"],
    });
    const client = as(stack, key.secret);
    expect((await client.post("/v1/schedules", valid("mine"))).status).toBe(201);
    const before = await keyspace(stack.redis);
    const elsewhere = await client.post("/v1/schedules", {
      ...valid("theirs"),
      channel: "billing",
    });
    expect((await errorOf(elsewhere, 403)).message).toContain('may not use channel "billing"');
    const moved = await client.send("PATCH", "/v1/schedules/mine", { channel: "billing" });
    expect((await errorOf(moved, 403)).message).toContain('may not use channel "billing"');
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
    expect((await client.send("DELETE", "/v1/schedules/mine")).status).toBe(204);
  });

  it("refuses a key without the publish scope", async () => {
    const key = await createKey(stack, { name: "reader", scopes: ["read"] });
    const res = await as(stack, key.secret).post("/v1/schedules", valid("nope"));
    expect((await errorOf(res, 403)).message).toContain('lacks the "publish" scope');
  });

  it("shows a key only the schedules of its channels", async () => {
    await createSchedule(stack, valid("on-reports"));
    await createSchedule(stack, { ...valid("on-billing"), channel: "billing" });
    const key = await createKey(stack, {
      name: "billing-reader",
      scopes: ["read"],
      channels: ["billing"],
    });
    const client = as(stack, key.secret);
    const page = (await (await client.api("/v1/schedules")).json()) as {
      schedules: ScheduleJson[];
    };
    expect(page.schedules.map((s) => s.name)).toEqual(["on-billing"]);
    expect((await client.api("/v1/schedules/on-billing")).status).toBe(200);
    expect((await errorOf(await client.api("/v1/schedules/on-reports"), 403)).code).toBe(
      "forbidden",
    );
  });
});

describe("changing a schedule", () => {
  it("moves the next run when the expression changes", async () => {
    await createSchedule(stack, { ...valid("retimed"), cron: "0 0 1 1 *", timezone: "UTC" });
    const changed = await changeSchedule(stack, "retimed", { cron: "*/5 * * * *" });
    const next = Date.parse(changed.nextRunAt!);
    expect(next).toBeGreaterThan(Date.now() - 1000);
    expect(next - Date.now()).toBeLessThanOrEqual(5 * MINUTE_MS);
    expect(new Date(next).getUTCMinutes() % 5).toBe(0);
    expect(await memberAt(stack, "retimed")).toBe(next);
  });

  it("moves the next run when the time zone changes", async () => {
    const created = await createSchedule(stack, {
      ...valid("zoned"),
      cron: "0 12 * * *",
      timezone: "UTC",
    });
    const changed = await changeSchedule(stack, "zoned", { timezone: "Asia/Tokyo" });
    expect(localTime(changed.nextRunAt!, "Asia/Tokyo")).toMatchObject({ hour: 12, minute: 0 });
    expect(changed.nextRunAt).not.toBe(created.nextRunAt);
    expect(await memberAt(stack, "zoned")).toBe(Date.parse(changed.nextRunAt!));
  });

  it("keeps the next run when only the message or the channel changes", async () => {
    const created = await createSchedule(stack, valid("reworded"));
    const changed = await changeSchedule(stack, "reworded", {
      channel: "digests",
      message: { data: "new words" },
    });
    expect(changed).toMatchObject({
      channel: "digests",
      message: { type: null, data: "new words" },
      nextRunAt: created.nextRunAt,
    });
    expect(Date.parse(changed.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.updatedAt));
  });

  it("pauses (no next run) and resumes from the first run after now", async () => {
    await createSchedule(stack, { ...valid("breathing"), cron: "* * * * *" });
    const paused = await changeSchedule(stack, "breathing", { paused: true });
    expect(paused).toMatchObject({ paused: true, nextRunAt: null });
    expect(await memberAt(stack, "breathing")).toBeNull();
    const resumedAt = Date.now();
    const resumed = await changeSchedule(stack, "breathing", { paused: false });
    const next = Date.parse(resumed.nextRunAt!);
    expect(next).toBeGreaterThan(resumedAt - 1000);
    expect(next - resumedAt).toBeLessThanOrEqual(MINUTE_MS);
    expect(await memberAt(stack, "breathing")).toBe(next);
  });

  it("answers 404 for a schedule nobody made, and makes none", async () => {
    const res = await patchSchedule(stack, "ghost", { paused: false });
    expect((await errorOf(res, 404)).code).toBe("schedule_not_found");
    expect(await stack.redis.hexists(stack.keys.schedules(), "ghost")).toBe(0);
  });
});

describe("deleting a schedule", () => {
  it("removes it, its last run and its next run; a second delete is 404", async () => {
    await createSchedule(stack, valid("gone"));
    await stack.redis.hset(stack.keys.schedules(), "gone#lastRun", "1");
    expect((await stack.api("/v1/schedules/gone", { method: "DELETE" })).status).toBe(204);
    expect(await stack.redis.hkeys(stack.keys.schedules())).toEqual([]);
    expect(await memberAt(stack, "gone")).toBeNull();
    expect((await errorOf(await stack.api("/v1/schedules/gone"), 404)).code).toBe(
      "schedule_not_found",
    );
    const again = await stack.api("/v1/schedules/gone", { method: "DELETE" });
    expect((await errorOf(again, 404)).code).toBe("schedule_not_found");
  });
});
