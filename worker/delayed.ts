// The `delay` timer (timers.ts): lets a channel's due delayed messages in (shared/delayed.ts), then
// delivers to the subscribers that woke, as a publish's kick does, and asks for the next run.
//
//   enter     a run of the script at a time (lua/enter.ts: up to 500 messages, 8 MiB), while more
//             are due and the budget allows; what the budget leaves stays due (its member too),
//             for a task sent at once or the next cron
//   next      with a queue, a timer task for the next due time (ENTER_GAP_MS after this run at
//             the earliest), sent by the run that moved the timer member: two runs at once (the
//             cron and a task, a task that came twice) send one between them, so tasks never
//             multiply. Queues delays whole seconds (at most 12
//             h): the task comes up to a second early and waits (consumer.ts), or, from further
//             away, comes back with the rest of the delay (dispatch.ts plannedTimer)
//   kick      the woken subscribers, delivered now (KICK_ON_PUBLISH, as after a publish)
//
// Safe twice and twice at once: a message enters once (the script), and a second kick of a
// subscriber finds nothing more to deliver than what the first takes.

import { enterDue } from "../shared/delayed.ts";
import type { WokenSubscriber } from "../shared/streams.ts";
import { plannedTimer } from "./dispatch.ts";
import type { DueTimer } from "./timer-task.ts";
import type { Worker } from "./worker.ts";

// The least time between two runs a timer task brings while messages keep coming due: a steady
// stream of them enters a quarter of a second's worth at a time (measured, 2,000 due over 4 s:
// about 1.1 commands per message instead of 4.3, one run per one or two messages), each at most
// that much after its time; a message due on its own still comes at its time.
const ENTER_GAP_MS = 250;

/** Runs the `delay:<channel>` timer at `now` (the cron's time, or the clock for a task). */
export async function enterDelayed(w: Worker, timer: DueTimer, now: number): Promise<void> {
  const channel = timer.name;
  const startedAt = w.clock();
  const woken = new Map<string, WokenSubscriber>();
  let nextAt: number | null = null;
  let rescheduled = false;
  let more = false;
  do {
    const run = await enterDue(w.db, channel, { dueBy: now, now: w.clock() }, w.config.retention);
    for (const s of run.woken) woken.set(s.name, s);
    if (run.refused !== null) console.error(`delayed messages of ${channel}: ${run.refused}`);
    ({ nextAt, more } = run);
    rescheduled ||= run.rescheduled;
  } while (more && w.db.meter.allows(w.clock(), 4));
  if (nextAt !== null && (rescheduled || more) && w.dispatch.queued) {
    const clock = w.clock();
    const at = more ? nextAt : Math.max(nextAt, startedAt + ENTER_GAP_MS);
    await w.dispatch.send([plannedTimer("delay", channel, at, clock)], clock);
  }
  if (woken.size > 0 && w.config.kickOnPublish) await w.kick(channel, [...woken.values()]);
}
