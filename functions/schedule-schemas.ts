// Request and response schemas of the schedule routes (functions/routes/schedules.ts).

import { z } from "@hono/zod-openapi";
import { cronProblem, timezoneProblem } from "../shared/cron.ts";
import { CHANNEL_NAME, OrderingKeyField, PlainMessage } from "./schemas.ts";

const NAME_RULE = "must be 1-128 of A-Za-z0-9._- starting with a letter or digit";

const ScheduleName = z.string().regex(CHANNEL_NAME, NAME_RULE).openapi({ example: "daily-report" });

export const ScheduleParams = z.object({
  name: ScheduleName.openapi({ param: { name: "name", in: "path" } }),
});

const Channel = z
  .string()
  .regex(CHANNEL_NAME, NAME_RULE)
  .openapi({ description: "Where each run publishes", example: "reports" });

const Cron = z
  .string()
  .max(256)
  .superRefine((cron, ctx) => {
    const problem = cronProblem(cron, Date.now());
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .openapi({
    // Not a registered format: the document's name for what croner reads in 5-field mode.
    format: "cron",
    description:
      "A standard 5-field cron expression, `minute hour day-of-month month day-of-week`, read by croner (its nicknames such as `@daily` and its `L`, `W` and `#` too); one that never runs is refused",
    example: "0 9 * * 1-5",
  });

const Timezone = z
  .string()
  .superRefine((timezone, ctx) => {
    const problem = timezoneProblem(timezone);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .openapi({
    // Not a registered format: an IANA time zone name, as Intl knows them.
    format: "time-zone",
    description: "The IANA time zone the expression is read in",
    example: "America/New_York",
  });

const Paused = z.boolean().openapi({
  description: "A paused schedule publishes nothing; resumed, it runs from its next run after now",
});

export const CreateScheduleBody = z
  .strictObject({
    name: ScheduleName,
    channel: Channel,
    cron: Cron,
    timezone: Timezone.default("UTC"),
    message: PlainMessage.openapi({
      description:
        "What each run publishes, as a publish of one message: `data`, `type?` and `orderingKey?`",
    }),
    paused: Paused.default(false),
  })
  .openapi("NewSchedule");

export const UpdateScheduleBody = z
  .strictObject({
    channel: Channel.optional(),
    cron: Cron.optional(),
    timezone: Timezone.optional(),
    message: PlainMessage.optional(),
    paused: Paused.optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "give at least one field to change")
  // The refine's rule, in the document (zod has no minProperties of its own).
  .openapi("UpdateSchedule", {
    minProperties: 1,
    description:
      "At least one field; those left out keep their value. A new cron or timezone, or a resume, moves nextRunAt to the first run after now",
  });

export const ScheduleSchema = z
  .object({
    name: z.string(),
    channel: z.string(),
    cron: z.string(),
    timezone: z.string(),
    message: z.object({
      type: z.string().nullable(),
      data: z.unknown().openapi({ description: "Any JSON value" }),
      ...OrderingKeyField,
    }),
    paused: z.boolean(),
    nextRunAt: z.iso.datetime().nullable().openapi({
      description:
        "When it publishes next; null while paused. In the past when the cron has not come since: the next cron publishes it",
    }),
    lastRunAt: z.iso.datetime().nullable().openapi({
      description:
        "The scheduled time of the last run published (of missed runs, the latest: they are published once); null before the first",
    }),
    createdAt: z.iso.datetime(),
    updatedAt: z.iso.datetime(),
  })
  .openapi("Schedule");

export const ScheduleQuery = z.object({
  after: ScheduleName.optional().openapi({
    description: "Return schedules named after this one (exclusive): the `next` of a page",
  }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const SchedulePage = z
  .object({
    schedules: z.array(ScheduleSchema),
    next: z.string().nullable().openapi({
      description: "Pass as `after` for the next page; null when this is the last",
    }),
  })
  .openapi("SchedulePage");
