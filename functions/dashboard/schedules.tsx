// The schedules page: every schedule of the channels the key may see, as GET /v1/schedules lists
// them (its first SCHEDULES_SHOWN, by name): channel, cron and time zone, next and last run, and
// whether it is paused. With the publish scope: pause or resume, and delete, each one.

import type { ScheduleView } from "../views.ts";
import { ApiButton, Cell, Live, pagePath, When } from "./parts.tsx";

export const SchedulesPage = (props: {
  schedules: ScheduleView[];
  /** More schedules than the page lists (the API pages through them all). */
  more: boolean;
  canPublish: boolean;
  now: number;
}) => (
  <>
    <h1>Schedules</h1>
    <Live id="schedules">
      {props.schedules.length === 0 ? (
        <p class="hint">
          No schedules yet. A schedule publishes a message to a channel at the runs of a cron
          expression: POST /v1/schedules.
        </p>
      ) : (
        <table class="rows">
          <thead>
            <tr>
              <th>Name</th>
              <th>Channel</th>
              <th>Cron</th>
              <th>Time zone</th>
              <th>Next run</th>
              <th>Last run</th>
              <th>State</th>
              {props.canPublish ? <th>Actions</th> : null}
            </tr>
          </thead>
          <tbody>
            {props.schedules.map((schedule) => (
              <Row schedule={schedule} canPublish={props.canPublish} now={props.now} />
            ))}
          </tbody>
        </table>
      )}
      {props.more ? (
        <p class="hint">
          The first {props.schedules.length} by name; GET /v1/schedules pages through them all.
        </p>
      ) : null}
    </Live>
  </>
);

const Row = (props: { schedule: ScheduleView; canPublish: boolean; now: number }) => {
  const s = props.schedule;
  const path = `/v1/schedules/${encodeURIComponent(s.name)}`;
  const state = s.paused ? "paused" : "active";
  return (
    <tr data-schedule={s.name}>
      <Cell label="Name">{s.name}</Cell>
      <Cell label="Channel">
        <a href={pagePath(s.channel)}>{s.channel}</a>
      </Cell>
      <Cell label="Cron">
        <code>{s.cron}</code>
      </Cell>
      <Cell label="Time zone">{s.timezone}</Cell>
      <Cell label="Next run">
        <When at={s.nextRunAt} now={props.now} />
      </Cell>
      <Cell label="Last run">
        <When at={s.lastRunAt} now={props.now} />
      </Cell>
      <Cell label="State">
        <span class={`status status-${state}`} data-status={state}>
          {state}
        </span>
      </Cell>
      {props.canPublish ? (
        <Cell label="Actions">
          <div class="actions">
            {s.paused ? (
              <ApiButton call={{ method: "PATCH", path, body: { paused: false } }} done="Resumed.">
                Resume
              </ApiButton>
            ) : (
              <ApiButton call={{ method: "PATCH", path, body: { paused: true } }} done="Paused.">
                Pause
              </ApiButton>
            )}
            <ApiButton
              call={{ method: "DELETE", path }}
              done="Deleted."
              confirm={`Delete the schedule ${s.name}? It publishes nothing more.`}
              danger
            >
              Delete
            </ApiButton>
          </div>
        </Cell>
      ) : null}
    </tr>
  );
};
