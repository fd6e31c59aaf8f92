// Long-polling a pull subscription without blocking reads (Upstash has none over REST).
//
// A waiting pull asks Redis again on a backoff: 100, 200, 400 ms, then every 500 ms. Each tick is
// one XREADGROUP (new messages only: it is both the check and the read, so a publish is seen by
// the next tick and returned by it; not the pull script, whose EVALSHA would double an empty
// tick's cost); every fourth tick (about every 2 s) also asks XPENDING IDLE whether a lease ran
// out. So waiting costs 2.5 commands per second (2 XREADGROUP + 0.5 XPENDING), and a message
// published meanwhile is returned within 500 ms, at its tick's cost plus the lease (1 XCLAIM).

import { type PullOptions, pull } from "./pull.ts";
import { channelQueue } from "./pull-lease.ts";
import { type Pulled, type PullRequest, pullCount, readCapped } from "./pull-read.ts";
import type { Db } from "./redis.ts";
import type { Subscription } from "./subscription.ts";

/** Delays between ticks, ms; the last repeats. */
export const WAIT_TICKS_MS = [100, 200, 400, 500];
/** Every this many ticks, a tick also looks for leases that ran out. */
export const EXPIRED_EVERY_TICKS = 4;

export interface WaitOptions extends Omit<PullOptions, "now"> {
  waitMs: number;
  clock: () => number;
  sleep: (ms: number) => Promise<void>;
}

/** Pulls; while nothing comes and `waitMs` has not passed, pulls again on the backoff above. */
export async function pullWaiting(
  db: Db,
  sub: Subscription,
  req: PullRequest,
  o: WaitOptions,
): Promise<Pulled> {
  const start = o.clock();
  const deadline = start + o.waitMs;
  const first = await pull(db, sub, req, { ...o, now: start });
  // The acks went with the first pull; the ticks only look for messages (new ones on the
  // channel; the look ticks, also leases that ran out and any redriven ones).
  const again = { ...req, ack: [] };
  const main = channelQueue(db, sub);
  let pulled = first;
  let redriving = o.redriving && !first.redriveEnded;
  for (let tick = 0; pulled.count === 0; tick++) {
    const left = deadline - o.clock();
    if (left <= 0) break;
    await o.sleep(Math.min(left, WAIT_TICKS_MS[Math.min(tick, WAIT_TICKS_MS.length - 1)]!));
    if ((tick + 1) % EXPIRED_EVERY_TICKS === 0) {
      pulled = await pull(db, sub, again, { ...o, redriving, look: true, now: o.clock() });
      redriving &&= !pulled.redriveEnded;
    } else {
      pulled = await readCapped(db, sub, main, again, pullCount(req.max, o.maxMessageBytes));
    }
  }
  return { ...pulled, acked: first.acked, redriveEnded: o.redriving && !redriving };
}
