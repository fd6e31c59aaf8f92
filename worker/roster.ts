// The `roster` timer (timers.ts) of a channel one of whose subscribers became active (made,
// resumed) a roster's lifetime ago. Publishes through other isolates, whose copy of the channel's
// roster predated it (shared/roster.ts), may have appended messages without waking it; by now
// every such copy has run out, so this wakes the active subscribers that have unread messages as
// a publish would (lua/rewake.ts), and delivers to them, as a publish's kick does.
//
// Safe twice and at once: a second run finds them woken (their wake members are there) and
// wakes nobody; the script removes the member only when it is due (a change since moved it on).

import { duePrefixes, PAUSED_SUFFIX, PULL_SUFFIX, rosterMember } from "../shared/keys.ts";
import { REWAKE_LUA } from "../shared/lua/rewake.ts";
import { runScript } from "../shared/redis.ts";
import { JOIN_AFTER_MS, parseWoken } from "../shared/streams.ts";
import type { DueTimer } from "./timer-task.ts";
import type { Worker } from "./worker.ts";

/** Runs the `roster:<channel>` timer at `now` (the cron's time, or the clock for a task). */
export async function rewakeRoster(w: Worker, timer: DueTimer, now: number): Promise<void> {
  const channel = timer.name;
  const { keys } = w.db;
  const prefixes = duePrefixes(channel);
  const woken = parseWoken(
    await runScript(
      w.db.redis,
      REWAKE_LUA,
      [keys.subscriptions(channel), keys.due(), keys.channel(channel)],
      [
        String(now),
        rosterMember(channel),
        prefixes.wake,
        prefixes.retry,
        PAUSED_SUFFIX,
        PULL_SUFFIX,
        String(JOIN_AFTER_MS),
      ],
    ),
  );
  if (woken.length > 0 && w.config.kickOnPublish) await w.kick(channel, woken);
}
