// Test shorthands for schedules (POST, GET, PATCH, DELETE /v1/schedules) and for the cron that
// runs them, over real HTTP to the Worker and through wrangler's test harness.

import { expect } from "vitest";
import type { Stack } from "./stack.ts";

export interface ScheduleJson {
  name: string;
  channel: string;
  cron: string;
  timezone: string;
  message: { type: string | null; data: unknown };
  paused: boolean;
  nextRunAt: string | null;
  lastRunAt: string | null;
  createdAt: string;
  updatedAt: string;
}

/** POST /v1/schedules with API_TOKEN, 201 expected. */
export async function createSchedule(
  stack: Stack,
  body: Record<string, unknown>,
): Promise<ScheduleJson> {
  const res = await stack.post("/v1/schedules", body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as ScheduleJson;
}

/** GET /v1/schedules/{name}, 200 expected. */
export async function getSchedule(stack: Stack, name: string): Promise<ScheduleJson> {
  const res = await stack.api(`/v1/schedules/${name}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as ScheduleJson;
}

/** PATCH /v1/schedules/{name} with API_TOKEN (the answer, whatever its status). */
export const patchSchedule = (stack: Stack, name: string, change: unknown) =>
  stack.api(`/v1/schedules/${name}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(change),
  });

/** PATCH expecting 200: the schedule it answers. */
export async function changeSchedule(
  stack: Stack,
  name: string,
  change: unknown,
): Promise<ScheduleJson> {
  const res = await patchSchedule(stack, name, change);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as ScheduleJson;
}

/** Deletes every schedule (each test starts without any due). */
export async function deleteAllSchedules(stack: Stack): Promise<void> {
  for (const name of await stack.redis.hkeys(stack.keys.schedules())) {
    if (name.includes("#")) continue;
    const res = await stack.api(`/v1/schedules/${name}`, { method: "DELETE" });
    expect(res.status).toBe(204);
  }
}

/** The score of the schedule's {p}:due member (its next run), or null. */
export async function memberAt(stack: Stack, name: string): Promise<number | null> {
  const score = await stack.redis.zscore(stack.keys.due(), `schedule:${name}`);
  return score === null ? null : Number(score);
}

/** Dispatches the Worker's cron trigger with `at` as its scheduled time; awaits its end. */
export async function fireCron(stack: Stack, at: number): Promise<void> {
  await stack.harness.getWorker().scheduled({ cron: "* * * * *", scheduledTime: new Date(at) });
}

/** The channel's messages (its whole history), oldest first; [] when it does not exist. */
export async function historyOf(
  stack: Stack,
  channel: string,
): Promise<{ id: string; type: string | null; data: unknown }[]> {
  const res = await stack.api(`/v1/channels/${channel}/messages?limit=1000`);
  if (res.status === 404) return [];
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { messages: { id: string; type: string | null; data: unknown }[] })
    .messages;
}

export const MINUTE_MS = 60_000;
