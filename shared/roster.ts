// A channel's roster: what its subs hash ({p}:subs:<ch>) tells a publish. Which subscribers to wake
// (push, not paused) and their settings, the channel's `~trim` clock and `~retention`, and whether
// any subscription exists. A publish used to read it whole (HGETALL) every time, a third of a
// single publish's cost. Now each isolate keeps a copy per channel for at most ROSTER_TTL_MS, so a
// publish through a warm isolate is its script and its XADD (lua/publish.ts), and the copy is read
// again, in the publish's own script, once a second at most.
//
// What a copy a second old can miss, and why nothing is lost:
//   - a subscription made, resumed or changed through another isolate: every change that can
//     make a subscriber newly active (a push subscription made, a resume) arms the channel's
//     `roster` timer ROSTER_TTL_MS ahead (lua/subscribe.ts, lua/update.ts). Its handler
//     (worker/roster.ts) wakes the channel's subscribers once every copy made before the change
//     has run out, so what a stale publish did not wake is delivered then: by the timer task
//     the route sends through the delivery queue, or by the cron without one;
//   - a change of settings (url, secrets, filter) reaches a publish's kick within a second;
//   - a deleted subscription: a stale copy may still wake it, but its consumer group went with
//     the DELETE, so nothing is delivered to it after the DELETE answered (the visit finds no
//     group and clears its schedule);
//   - the trim clock: a copy that says a trim is due is checked against the stored clock first
//     (1 HGET, lua/append.ts retain), and each publish's script answers the clock it wrote or
//     read, so a copy never trims twice.
// Changes made through this isolate drop its copy at once (shared/subscriptions.ts,
// setRetention).

import type { Db } from "./redis.ts";

/** How old a copy may be: a change through another isolate reaches publishes within this. */
export const ROSTER_TTL_MS = 1000;

/** The copies an isolate keeps, at most this many channels (the oldest copy goes first). */
const MAX_CHANNELS = 1000;

export interface Roster {
  /** When it was read (ms). */
  at: number;
  /** The subscribers a publish wakes (push, not paused), name -> settings (JSON as stored). */
  active: Map<string, string>;
  /** The channel's `~trim` and `~retention` fields, as stored; null when absent. */
  trim: string | null;
  retention: string | null;
  /** Any subscription exists (paused, pull or push): the trim must ask the groups. */
  subscribed: boolean;
}

/**
 * A roster as the publish script answers it when it read the subs hash (lua/append.ts active:
 * the parsing is the script's): "1" when any subscription exists, `~trim`, `~retention` ("" for
 * none), then the name and settings of each subscriber it wakes.
 */
export function rosterOf(answer: string[], at: number): Roster {
  const [subscribed = "", trim = "", retention = ""] = answer;
  const active = new Map<string, string>();
  for (let i = 3; i + 1 < answer.length; i += 2) active.set(answer[i]!, answer[i + 1]!);
  return {
    at,
    active,
    trim: trim === "" ? null : trim,
    retention: retention === "" ? null : retention,
    subscribed: subscribed === "1",
  };
}

/** One isolate's copies: per database (a Worker's clients are made per request), per channel. */
export class Rosters {
  private readonly copies = new Map<string, Roster>();

  private static key(db: Db, channel: string) {
    return `${db.keys.channels()}\n${channel}`;
  }

  /** The copy of `channel`'s roster, or null when there is none younger than ROSTER_TTL_MS. */
  get(db: Db, channel: string, now: number): Roster | null {
    const roster = this.copies.get(Rosters.key(db, channel));
    if (!roster) return null;
    const age = now - roster.at;
    return age >= 0 && age < ROSTER_TTL_MS ? roster : null;
  }

  /** Keeps `roster` as the channel's copy. */
  set(db: Db, channel: string, roster: Roster) {
    const key = Rosters.key(db, channel);
    this.copies.delete(key);
    this.copies.set(key, roster);
    if (this.copies.size > MAX_CHANNELS) {
      const oldest = this.copies.keys().next().value;
      if (oldest !== undefined) this.copies.delete(oldest);
    }
  }

  /** Drops the channel's copy: it changed through this isolate. */
  forget(db: Db, channel: string) {
    this.copies.delete(Rosters.key(db, channel));
  }
}

/** This isolate's copies (module scope: they outlive a request, as the isolate does). */
export const rosters = new Rosters();
