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
// to the delivery queue at once, as a publish's kick would; without a queue, the pass that ran
// the timer delivers them (pass.ts looks at what is due again after its timers). A schedule whose channel does not exist (deleted since)
// creates it again, as any publish does.

import { latestRun, nextRun } from "../shared/cron.ts";
import { lastRunField, scheduleRunKey, timerMember } from "../shared/keys.ts";
import { SCHEDULE_NEXT_LUA } from "../shared/lua/schedule-next.ts";
import { runScript } from "../shared/redis.ts";
import { loadSchedule, type Schedule } from "../shared/schedules.ts";
import { publish } from "../shared/streams.ts";
import { taskFor, type Worker } from "./dispatch.ts";

/** The due timer, as far as a run needs it (timers.ts imports this file, so not its DueTimer). */
interface Due {
  /** The schedule's name. */
  name: string;
  /** The member's score the cron found due (ms). */
  at: number;
}

/**
 * Runs a due schedule at `now` (the cron's scheduled time). Safe to run twice, and at once. True
 * when its publish woke subscribers that no queue took: the pass running it delivers them.
 */
export async function runSchedule(w: Worker, timer: Due, now: number): Promise<boolean> {
  const schedule = await loadSchedule(w.db, timer.name);
  // Deleted or paused since the member was read: it is only removed (if nobody moved it).
  if (!schedule || schedule.paused) {
    await moveOn(w, timer, null, null);
    return false;
  }
  const latest = latestRun(schedule, now);
  const runAt = latest !== null && latest >= timer.at ? latest : null;
  const woke = runAt !== null && (await publishRun(w, schedule, runAt));
  await moveOn(w, timer, nextRun(schedule, now), runAt);
  return woke;
}

/** Publishes the run; true when the subscribers it woke are left to the pass (no queue took them). */
async function publishRun(w: Worker, schedule: Schedule, runAt: number): Promise<boolean> {
  const { channel, message } = schedule;
  // The clock, not the cron's time: the wake-ups' scores and the trim are the publish's own.
  const now = w.clock();
  const result = await publish(
    w.db,
    channel,
    [{ type: message.type ?? undefined, data: message.data }],
    {
      idempotencyKey: scheduleRunKey(schedule.name, runAt),
      now,
      retention: w.config.retention,
    },
  );
  if (result.duplicate || result.woken.length === 0 || !w.config.kickOnPublish) return false;
  // Refused (or no queue): the wake members are in {p}:due, and the pass finds them.
  const tasks = result.woken.map((s) => ({ task: taskFor({ channel, name: s.name }, "fanout") }));
  return !(w.dispatch.queued && (await w.dispatch.send(tasks, now)));
}

async function moveOn(w: Worker, timer: Due, next: number | null, runAt: number | null) {
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
