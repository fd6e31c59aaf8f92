// Schedules: a message published to a channel at the runs of a cron expression in a time zone
// (stored by shared/schedules.ts, run by worker/schedule-runs.ts). Create, list, read, change,
// delete.
//
// Who may: a schedule publishes to its channel, so making, changing or deleting one needs the
// `publish` scope on its channel (and on the new one when a PATCH moves it); reading one needs
// `read` on its channel, and a list shows the schedules of the channels the key may use.

import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import { canSee } from "../../shared/api-keys.ts";
import { nextRun } from "../../shared/cron.ts";
import { Conflict, NotFound } from "../../shared/errors.ts";
import {
  createSchedule,
  deleteSchedule,
  listSchedules,
  loadSchedule,
  type Schedule,
  scheduleState,
  updateSchedule,
} from "../../shared/schedules.ts";
import { allowChannel, needs } from "../auth.ts";
import { encodeData } from "../message-data.ts";
import {
  CreateScheduleBody,
  SchedulePage,
  ScheduleParams,
  ScheduleQuery,
  ScheduleSchema,
  UpdateScheduleBody,
} from "../schedule-schemas.ts";
import { bodyErrors, commonErrors, errorResponse, json, storageError } from "../schemas.ts";
import type { AppEnv } from "../types.ts";
import { scheduleView } from "../views.ts";

const body = <T extends z.ZodType>(schema: T) => ({
  content: { "application/json": { schema } },
  required: true,
});
const notFound = { 404: errorResponse("schedule_not_found: no schedule with this name") };
const invalid = {
  400: errorResponse(
    "invalid_request: a field fails validation, the message names it (a cron expression croner refuses or that never runs, a time zone that is not an IANA name, ...); invalid_json",
  ),
};

const routes = {
  create: createRoute({
    method: "post",
    path: "/v1/schedules",
    operationId: "schedules.create",
    ...needs("publish"),
    summary: "Publish a message to a channel at the runs of a cron expression, in a time zone",
    request: { body: body(CreateScheduleBody) },
    responses: {
      201: json(ScheduleSchema, "Created, with its first run in nextRunAt (null when paused)"),
      ...commonErrors,
      ...invalid,
      ...bodyErrors,
      409: errorResponse("schedule_exists: the name is taken"),
      ...storageError,
    },
  }),
  list: createRoute({
    method: "get",
    path: "/v1/schedules",
    operationId: "schedules.list",
    ...needs("read"),
    summary: "The schedules of the channels the key may use, by name, paged with `after`",
    request: { query: ScheduleQuery },
    responses: { 200: json(SchedulePage, "A page of schedules"), ...commonErrors },
  }),
  get: createRoute({
    method: "get",
    path: "/v1/schedules/{name}",
    operationId: "schedules.get",
    ...needs("read"),
    summary: "One schedule, with its next and last run",
    request: { params: ScheduleParams },
    responses: { 200: json(ScheduleSchema, "The schedule"), ...commonErrors, ...notFound },
  }),
  update: createRoute({
    method: "patch",
    path: "/v1/schedules/{name}",
    operationId: "schedules.update",
    ...needs("publish"),
    summary: "Change the channel, cron, timezone or message; pause or resume",
    request: { params: ScheduleParams, body: body(UpdateScheduleBody) },
    responses: {
      200: json(ScheduleSchema, "Updated"),
      ...commonErrors,
      ...invalid,
      ...bodyErrors,
      ...notFound,
      ...storageError,
    },
  }),
  remove: createRoute({
    method: "delete",
    path: "/v1/schedules/{name}",
    operationId: "schedules.delete",
    ...needs("publish"),
    summary: "Delete the schedule: it publishes nothing more",
    request: { params: ScheduleParams },
    responses: { 204: { description: "Deleted" }, ...commonErrors, ...notFound },
  }),
};

const scheduleNotFound = (name: string) =>
  new NotFound(`no schedule named "${name}"`, "schedule_not_found");

type NewMessage = { type?: string | undefined; data?: unknown; orderingKey?: string | undefined };
const storedMessage = (m: NewMessage, maxMessageBytes: number) => ({
  type: m.type ?? null,
  data: encodeData(m.data, "message.data", maxMessageBytes),
  ...(m.orderingKey === undefined ? {} : { orderingKey: m.orderingKey }),
});

export function scheduleRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.create, async (c) => {
      const input = c.req.valid("json");
      const { db, config, principal } = c.var;
      allowChannel(principal, "publish", input.channel);
      const now = Date.now();
      const schedule: Schedule = {
        name: input.name,
        channel: input.channel,
        cron: input.cron,
        timezone: input.timezone,
        message: storedMessage(input.message, config.maxMessageBytes),
        paused: input.paused,
        createdAt: new Date(now).toISOString(),
        updatedAt: new Date(now).toISOString(),
      };
      const nextRunAt = schedule.paused ? null : nextRun(schedule, now);
      if (!(await createSchedule(db, schedule, nextRunAt))) {
        throw new Conflict(`a schedule named "${input.name}" exists`, "schedule_exists");
      }
      return c.json(scheduleView({ schedule, nextRunAt, lastRunAt: null }), 201);
    })
    .openapi(routes.list, async (c) => {
      const { db, config, principal } = c.var;
      const page = await listSchedules(
        db,
        c.req.valid("query"),
        (channel) => canSee(principal, channel),
        config.maxMessageBytes,
      );
      return c.json({ schedules: page.schedules.map(scheduleView), next: page.next }, 200);
    })
    .openapi(routes.get, async (c) => {
      const { name } = c.req.valid("param");
      const state = await scheduleState(c.var.db, name);
      if (!state) throw scheduleNotFound(name);
      allowChannel(c.var.principal, "read", state.schedule.channel);
      return c.json(scheduleView(state), 200);
    })
    .openapi(routes.update, async (c) => {
      const { name } = c.req.valid("param");
      const change = c.req.valid("json");
      const { db, config, principal } = c.var;
      const before = await loadSchedule(db, name);
      if (!before) throw scheduleNotFound(name);
      allowChannel(principal, "publish", before.channel);
      if (change.channel !== undefined) allowChannel(principal, "publish", change.channel);
      const now = Date.now();
      const after: Schedule = {
        ...before,
        channel: change.channel ?? before.channel,
        cron: change.cron ?? before.cron,
        timezone: change.timezone ?? before.timezone,
        message: change.message
          ? storedMessage(change.message, config.maxMessageBytes)
          : before.message,
        paused: change.paused ?? before.paused,
        updatedAt: new Date(now).toISOString(),
      };
      // New times, or a resume, run from the first run after now (runs missed while paused are
      // not published); anything else keeps the next run where it is.
      const retimed =
        after.cron !== before.cron || after.timezone !== before.timezone || before.paused;
      const next = after.paused ? null : retimed ? nextRun(after, now) : "keep";
      if (!(await updateSchedule(db, after, next))) throw scheduleNotFound(name);
      const state = await scheduleState(db, name);
      if (!state) throw scheduleNotFound(name);
      return c.json(scheduleView(state), 200);
    })
    .openapi(routes.remove, async (c) => {
      const { name } = c.req.valid("param");
      const schedule = await loadSchedule(c.var.db, name);
      if (!schedule) throw scheduleNotFound(name);
      allowChannel(c.var.principal, "publish", schedule.channel);
      await deleteSchedule(c.var.db, name);
      return c.body(null, 204);
    });
}
