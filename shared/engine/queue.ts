// The queues a subscription's group reads, who reads them, and the ids they hand out (see the
// glossary in README.md beside this file).

import type { Db } from "../redis.ts";
import type { Subscription } from "../subscription.ts";

/** A stream a subscription's messages wait in, read with its group. */
export interface Queue {
  channel: string;
  subscription: string;
  stream: string;
  group: string;
  /** The redrive stream: it keeps nothing that is done, so an ack deletes the entry too. */
  redrive: boolean;
  /** The subscription's retry and wake members in {p}:due (push; "" for pull: never scheduled). */
  schedule: { retry: string; wake: string };
  /** The subscription's pace key ({p}:pace:<ch>:<sub>): start slots of paced requests (push). */
  pace: string;
}

type Named = Pick<Subscription, "channel" | "name" | "group" | "mode">;

/** The subscription's channel queue; `schedule` only for a push subscription's (its units). */
export function channelQueue(db: Db, sub: Named, schedule = noSchedule): Queue {
  const stream = db.keys.channel(sub.channel);
  return { ...namesOf(sub), stream, redrive: false, schedule, pace: paceKey(db, sub) };
}

/** The subscription's redrive stream as a queue (dead letters put back). */
export function redriveQueue(db: Db, sub: Named, schedule = noSchedule): Queue {
  const stream = db.keys.redrive(sub.channel, sub.name);
  return { ...namesOf(sub), stream, redrive: true, schedule, pace: paceKey(db, sub) };
}

const noSchedule = { retry: "", wake: "" };
const namesOf = (sub: Named) => ({
  channel: sub.channel,
  subscription: sub.name,
  group: sub.group,
});
const paceKey = (db: Db, sub: Named) => db.keys.pace(sub.channel, sub.name);

/**
 * The consumer that holds a subscription's entries waiting for their next attempt (nacked, given
 * back unsent, a pull's extended ones), so that readers hold only what they have in flight, each
 * visible again when its idle time reaches LEASE_BASE_MS. Named `deliverer`, the one consumer of
 * push groups before the engine (what such a group still holds from then waits there too), a
 * name no pull consumer may take.
 */
export const WAITING_ROOM = "deliverer";

/**
 * The consumer that holds an ordered push subscription's entries waiting behind the one of their
 * ordering key handed out (lua/take.ts: its lanes), never looked at nor counted as in flight.
 */
export const PARKED = "parked";

/** A push reader's name: unique per deliverer run, so what it holds is its own (lua/take.ts). */
export function newReader(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A pull's visibility timeout unless it asks for another (functions/pull-schemas.ts). */
export const PULL_VISIBILITY_MS = 30_000;

/**
 * The reader (consumer in the group) a pull takes as: its consumer's name, followed by
 * `~<visibilityMs>` when that is not PULL_VISIBILITY_MS, so that what it holds is visible again
 * that long after its read with no lease to set (lua/take.ts: look). `~` is in no consumer's name.
 */
export const pullReader = (consumer: string, visibilityMs: number) =>
  visibilityMs === PULL_VISIBILITY_MS ? consumer : `${consumer}~${visibilityMs}`;

/** Longest visibility timeout (and nack delay) anyone may ask for: 12 h, as Pub/Sub's lease. */
export const MAX_VISIBILITY_MS = 43_200_000;
/**
 * Idle time at which a leased or nacked entry is visible again (lua/take.ts): above
 * MAX_VISIBILITY_MS. A push reader's own entries are not leased: theirs count from the read.
 */
export const LEASE_BASE_MS = 86_400_000;

/**
 * Ids by the queue they are in: a redriven message's id is 0-<n> (lua/redrive.ts: no publish
 * makes one), any other stream id (the API takes only stream ids) is the channel's. Whichever
 * queue an id is sent to, one that is not pending there counts 0.
 */
export function splitIds(ids: string[]): { channel: string[]; redrive: string[] } {
  const channel: string[] = [];
  const redrive: string[] = [];
  for (const id of ids) (/^0+-/.test(id) ? redrive : channel).push(id);
  return { channel, redrive };
}
