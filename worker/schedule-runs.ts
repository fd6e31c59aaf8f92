// A schedule's run: the timer of kind "schedule" (timers.ts), run by the cron when the
// schedule's member in {p}:due comes due (shared/schedules.ts).
//
//   read      the schedule (1 HGET)
//   publish   its message for the latest run at or before now, with the run's time in its
//             Idempotency-Key: however many invocations run it (two crons overlap, one is
//             retried), the channel gets it once
//   move on   record the run and move the member to the first run after now, unless another
//             invocation or the API moved it meanwhile (lua/schedule-next.ts)
//
// Runs missed while the Worker was down (or while the cron did not come) are not published one
// by one: the member, due since the first of them, is found by the next cron, which publishes one
// message, for the latest run at or before its time; that is the run lastRunAt shows. A run
// earlier than the member's time is never published: it came before the schedule was made,
// resumed or changed.
//
// The message is published like any other (lua/publish.ts): the subscribers it wakes are handed
// to the delivery queue at once, as a publish's kick would; without a queue, the run delivers
// them itself (w.kick), in the cron invocation that ran it. A schedule whose channel does not exist (deleted since)
// creates it again, as any publish does.

import { latestRun, nextRun } from "../shared/cron.ts";
import { lastRunField, scheduleRunKey, timerMember } from "../shared/keys.ts";
import { SCHEDULE_NEXT_LUA } from "../shared/lua/schedule-next.ts";
import { runScript } from "../shared/redis.ts";
import { loadSchedule, type Schedule } from "../shared/schedules.ts";
import { publish } from "../shared/streams.ts";
import { taskFor } from "./dispatch.ts";
import type { DueTimer } from "./timer-task.ts";
import type { Worker } from "./worker.ts";

/** Runs a due schedule at `now` (the cron's scheduled time). Safe to run twice, and at once. */
export async function runSchedule(w: Worker, timer: DueTimer, now: number): Promise<void> {
  const schedule = await loadSchedule(w.db, timer.name);
  // Deleted or paused since the member was read: it is only removed (if nobody moved it).
  if (!schedule || schedule.paused) return moveOn(w, timer, null, null);
  const latest = latestRun(schedule, now);
  const runAt = latest !== null && latest >= timer.at ? latest : null;
  if (runAt !== null) await publishRun(w, schedule, runAt);
  await moveOn(w, timer, nextRun(schedule, now), runAt);
}

async function publishRun(w: Worker, schedule: Schedule, runAt: number): Promise<void> {
  const { channel, message } = schedule;
  // The clock, not the cron's time: the wake-ups' scores and the trim are the publish's own.
  const now = w.clock();
  const result = await publish(
    w.db,
    channel,
    [{ type: message.type ?? undefined, data: message.data, orderingKey: message.orderingKey }],
    {
      idempotencyKey: scheduleRunKey(schedule.name, runAt),
      now,
      retention: w.config.retention,
    },
  );
  if (result.duplicate || result.woken.length === 0 || !w.config.kickOnPublish) return;
  // To the queue, as a publish's kick hands over what it does not visit; without one (or refused),
  // delivered here and now. Either way the wake members are in {p}:due for the next pass.
  const tasks = result.woken.map((s) => ({ task: taskFor({ channel, name: s.name }, "fanout") }));
  if (w.dispatch.queued && (await w.dispatch.send(tasks, now))) return;
  await w.kick(channel, result.woken);
}

async function moveOn(w: Worker, timer: DueTimer, next: number | null, runAt: number | null) {
  await runScript(
    w.db.redis,
    SCHEDULE_NEXT_LUA,
    [w.db.keys.schedules(), w.db.keys.due()],
    [
      timer.name,
      lastRunField(timer.name),
      timerMember("schedule", timer.name),
      String(timer.at),
      next === null ? "" : String(next),
      runAt === null ? "" : String(runAt),
    ],
  );
}
