// Schedules in Redis: a message published to a channel at the runs of a cron expression.
//
// A schedule is JSON in {p}:schedules under its name, with the time of its last published run
// beside it (<name>#lastRun), and its next run is the score of its one {p}:due member
// "schedule:<name>" (keys.ts), absent while it is paused. The cron's one ZRANGE finds it due;
// worker/schedule-runs.ts publishes the run and moves the member on. Every write of the JSON
// sets or removes the member in the same step (lua/schedule-save.ts).
//
// Schedules are made by people, so they are few; still, a list reads them in slices that keep a
// page under PAGE_BYTES, since each holds a message of up to MAX_MESSAGE_BYTES.

import type { CronSpec } from "./cron.ts";
import { lastRunField, timerMember } from "./keys.ts";
import { SCHEDULE_SAVE_LUA } from "./lua/schedule-save.ts";
import { asArray, asNumber, asOptionalString, asString, type Db, runScript } from "./redis.ts";
import { PAGE_BYTES } from "./streams.ts";

export interface Schedule extends CronSpec {
  name: string;
  channel: string;
  /**
   * What each run publishes: `data` is the JSON text, as a publish stores it; `orderingKey`
   * absent when none (and in schedules stored before ordering).
   */
  message: { type: string | null; data: string; orderingKey?: string };
  paused: boolean;
  createdAt: string;
  updatedAt: string;
}

/** A schedule with its times (ms): null while paused, and before its first run. */
export interface ScheduleState {
  schedule: Schedule;
  nextRunAt: number | null;
  lastRunAt: number | null;
}

/** Names are channel names' characters, so `#` (lastRunField) never occurs in one. */
const isScheduleField = (field: string) => /^[A-Za-z0-9._-]+$/.test(field);

const member = (name: string) => timerMember("schedule", name);

function serialize(s: Schedule): string {
  const { name: _, ...stored } = s;
  return JSON.stringify(stored);
}

function parse(name: string, json: string): Schedule {
  return { name, ...(JSON.parse(json) as Omit<Schedule, "name">) };
}

/** The schedule as stored, or null. 1 HGET. */
export async function loadSchedule(db: Db, name: string): Promise<Schedule | null> {
  const json = asOptionalString(await db.redis.hget(db.keys.schedules(), name));
  return json === null ? null : parse(name, json);
}

/** The schedule with its next and last run, or null. 1 round trip: HMGET, ZSCORE. */
export async function scheduleState(db: Db, name: string): Promise<ScheduleState | null> {
  return (await readStates(db, [name]))[0] ?? null;
}

// The schedules of `names` that exist, in order: 1 round trip (1 HMGET, 1 ZMSCORE).
async function readStates(db: Db, names: string[]): Promise<ScheduleState[]> {
  if (names.length === 0) return [];
  const fields = names.flatMap((name) => [name, lastRunField(name)]);
  const [values, scores] = await db.redis
    .pipeline()
    .hmget(db.keys.schedules(), ...fields)
    .zmscore(db.keys.due(), names.map(member))
    .exec<[unknown, unknown]>();
  const stored = asArray(values);
  const times = asArray(scores);
  return names.flatMap((name, i) => {
    const json = asOptionalString(stored[2 * i]);
    if (json === null) return [];
    const last = asOptionalString(stored[2 * i + 1]);
    const next = times[i];
    return [
      {
        schedule: parse(name, json),
        nextRunAt: next === null || next === undefined ? null : asNumber(next),
        lastRunAt: last === null ? null : Number(last),
      },
    ];
  });
}

/**
 * A page of the schedules `visible` lets through, by name, after `after` (exclusive). `next` is
 * the `after` of the following page, null on the last. 1 HKEYS, then 1 round trip per slice.
 */
export async function listSchedules(
  db: Db,
  page: { after?: string | undefined; limit: number },
  visible: (channel: string) => boolean,
  maxMessageBytes: number,
): Promise<{ schedules: ScheduleState[]; next: string | null }> {
  const after = page.after;
  const names = asArray(await db.redis.hkeys(db.keys.schedules()))
    .map(asString)
    .filter((name) => isScheduleField(name) && (after === undefined || name > after))
    .sort();
  const out: ScheduleState[] = [];
  let read = 0;
  let bytes = 0;
  while (read < names.length && out.length < page.limit) {
    // As many as fit in what is left of PAGE_BYTES if every message were as large as allowed.
    const room = Math.floor((PAGE_BYTES - bytes) / Math.max(1, maxMessageBytes));
    const want = Math.min(Math.max(room, read === 0 ? 1 : 0), page.limit - out.length);
    if (want <= 0) break;
    const slice = names.slice(read, read + want);
    read += slice.length;
    for (const state of await readStates(db, slice)) {
      bytes += state.schedule.message.data.length;
      if (visible(state.schedule.channel)) out.push(state);
    }
  }
  return { schedules: out, next: read < names.length ? names[read - 1]! : null };
}

const save = (db: Db, mode: string, s: Pick<Schedule, "name">, json = "", next = "") =>
  runScript(
    db.redis,
    SCHEDULE_SAVE_LUA,
    [db.keys.schedules(), db.keys.due()],
    [mode, s.name, lastRunField(s.name), member(s.name), json, next],
  );

const nextArg = (nextRunAt: number | null) => (nextRunAt === null ? "" : String(nextRunAt));

/** Stores a new schedule and its next run (null: none, paused). False when the name is taken. */
export async function createSchedule(
  db: Db,
  schedule: Schedule,
  nextRunAt: number | null,
): Promise<boolean> {
  return (
    asNumber(await save(db, "create", schedule, serialize(schedule), nextArg(nextRunAt))) === 1
  );
}

/**
 * Replaces a schedule and sets its next run (null: none, paused; "keep": as it is). False when
 * there is no such schedule (deleted meanwhile: nothing is written).
 */
export async function updateSchedule(
  db: Db,
  schedule: Schedule,
  nextRunAt: number | null | "keep",
): Promise<boolean> {
  const next = nextRunAt === "keep" ? "keep" : nextArg(nextRunAt);
  return asNumber(await save(db, "update", schedule, serialize(schedule), next)) === 1;
}

/** Deletes a schedule, its last run and its member; no further run is published. */
export async function deleteSchedule(db: Db, name: string): Promise<void> {
  await save(db, "delete", { name });
}
