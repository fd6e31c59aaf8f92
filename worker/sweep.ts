// The sweep: a channel's retention and its subscriptions' dead-letter bounds, enforced whether
// or not anybody publishes to it (lua/sweep.ts: the same trim step publish runs, the same
// dead-letter bounds a park keeps).
//
// It is the timer "sweep:<ch>" in {p}:due (shared/keys.ts), run by the cron when it comes due
// (timers.ts), so finding what to sweep costs the cron's one ZRANGE and no SCAN: a pass costs
// O(channels due), and an idle cron stays 1 command. Who keeps the member:
//   publish      its trim step moves it to a gap from now if later or absent (ZADD LT: 1 command
//                per trim, none per publish), and so does a channel's first publish
//   subscribe    the same, when it starts a new channel's trim clock
//   PATCH        a change of retention makes it due now: the next cron applies it
//   park         when the oldest dead letter expires, if sooner
//   the sweep    sets it to when it is next wanted, or removes it when nothing could go before
//                the next publish (which puts it back)
//   delete       the channel's delete removes it (lua/drop-channel.ts)
// A channel made before the sweep existed gets its member from its next trim (its next publish:
// a silent channel's trim is long due) or a PATCH of its retention (docs/operations.md).

import { deadLetterBounds } from "../shared/engine/dead-letters.ts";
import {
  isSubscriptionField,
  retentionField,
  stateField,
  sweepMember,
  trimField,
} from "../shared/keys.ts";
import { SWEEP_LUA } from "../shared/lua/sweep.ts";
import { asArray, asNumber, asString, runScript } from "../shared/redis.ts";
import { retentionArgs } from "../shared/streams.ts";
import type { TimerHandler, Worker } from "./worker.ts";

/** What a sweep did; null when the channel no longer exists (its member is gone). */
export interface Swept {
  /** Messages the retention trimmed. */
  trimmed: number;
  deadLettersExpired: number;
  deadLettersDropped: number;
  /** When the channel is swept next; null: not before its next publish. */
  nextAt: number | null;
}

/** The handler of the timer kind "sweep" (timers.ts): the channel is the timer's name. */
export const sweep: TimerHandler = async (w, timer, now) => {
  const swept = await sweepChannel(w, timer.name, now);
  if (swept && swept.trimmed + swept.deadLettersExpired + swept.deadLettersDropped > 0) {
    console.log(
      `sweep: ${timer.name}: trimmed ${swept.trimmed} messages, dead letters expired ` +
        `${swept.deadLettersExpired}, dropped ${swept.deadLettersDropped}`,
    );
  }
};

/**
 * Sweeps `channel` at `now`: 1 HKEYS (its subscriptions, whose dead-letter keys the script
 * declares) and the script. Safe to repeat (db.redis): a repeat finds nothing more to remove.
 */
export async function sweepChannel(w: Worker, channel: string, now: number): Promise<Swept | null> {
  const { db, config } = w;
  const { keys } = db;
  const fields = asArray(await db.redis.hkeys(keys.subscriptions(channel))).map(asString);
  const names = fields.filter(isSubscriptionField);
  const letters = deadLetterBounds(config);
  const reply = asArray(
    await runScript(
      db.redis,
      SWEEP_LUA,
      [
        keys.channel(channel),
        keys.subscriptions(channel),
        keys.state(channel),
        keys.due(),
        ...names.map((name) => keys.deadLetters(channel, name)),
      ],
      [
        sweepMember(channel),
        String(now),
        ...retentionArgs(config.retention),
        retentionField,
        trimField,
        String(letters.maxAgeMs),
        String(letters.maxMessages),
        String(letters.maxBytes),
        ...names.flatMap((name) => [
          stateField(name, "deadLettersExpired"),
          stateField(name, "deadLettersDropped"),
        ]),
      ],
    ),
  ).map(asNumber);
  const [trimmed, deadLettersExpired, deadLettersDropped, nextAt] = reply;
  if (trimmed === -1 && reply.length === 1) return null;
  return {
    trimmed: trimmed ?? 0,
    deadLettersExpired: deadLettersExpired ?? 0,
    deadLettersDropped: deadLettersDropped ?? 0,
    nextAt: nextAt === undefined || nextAt === -1 ? null : nextAt,
  };
}
