// The schedule methods of the client (client.ts): a message published to a channel at the runs
// of a cron expression in a time zone. Each is one request (pages of the list aside).

import type { Api } from "./api.ts";
import { ok } from "./errors.ts";
import type { components } from "./schema.d.ts";

type Schemas = components["schemas"];
export type Schedule = Schemas["Schedule"];
/** `timezone` defaults to "UTC", `paused` to false. */
export type NewSchedule = Schemas["NewSchedule"];
export type ScheduleChange = Schemas["UpdateSchedule"];

export interface ScheduleListOptions {
  /** Start after this name (exclusive); default: the first. */
  after?: string;
  /** Schedules per request, 1-1000; default 100. */
  pageSize?: number;
  signal?: AbortSignal;
}

const one = "/v1/schedules/{name}";

export function scheduleMethods(api: Api) {
  const named = (name: string) => ({ params: { path: { name } } });

  return {
    schedules: {
      /** Makes a schedule; `nextRunAt` in the answer is its first run (null when paused). */
      create: (body: NewSchedule): Promise<Schedule> => ok(api.POST("/v1/schedules", { body })),
      /** The schedules of the channels the key may use, by name, a page at a time. */
      async *list(o: ScheduleListOptions = {}): AsyncGenerator<Schedule, void> {
        let after = o.after;
        for (;;) {
          const page = await ok(
            api.GET("/v1/schedules", {
              params: { query: { after, limit: o.pageSize } },
              signal: o.signal ?? null,
            }),
          );
          yield* page.schedules;
          if (page.next === null) return;
          after = page.next;
        }
      },
      get: (name: string): Promise<Schedule> => ok(api.GET(one, named(name))),
      /** A new cron or timezone, or a resume, runs from the first run after now. */
      update: (name: string, change: ScheduleChange): Promise<Schedule> =>
        ok(api.PATCH(one, { ...named(name), body: change })),
      delete: async (name: string): Promise<void> => {
        await ok(api.DELETE(one, named(name)));
      },
    },
  };
}
