// Long-polling a pull subscription without blocking reads (Upstash has none over REST).
//
// A waiting pull asks Redis again on a backoff: 100, 200, 400 ms, then every 750 ms. Each tick is
// one take (functions/pull.ts: its read is both the check and the read, so a publish is seen by
// the next tick and returned by it, leased in the same step); every fourth tick (about every 3 s)
// it also looks for leases that ran out. So waiting costs about 3 commands per second (an empty
// tick is 1 EVALSHA + 1 XREADGROUP; a look adds 1 XPENDING), and a message published meanwhile is
// returned within 750 ms.

import type { Db } from "../shared/redis.ts";
import type { Subscription } from "../shared/subscription.ts";
import { type Pulled, type PullOptions, type PullRequest, pull } from "./pull.ts";

/** Delays between ticks, ms; the last repeats. */
export const WAIT_TICKS_MS = [100, 200, 400, 750];
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
  // The acks went with the first pull; the ticks only look for messages.
  const again = { ...req, ack: [] };
  let pulled = first;
  let redriving = o.redriving && !first.redriveEnded;
  for (let tick = 0; pulled.messages.count === 0; tick++) {
    const left = deadline - o.clock();
    if (left <= 0) break;
    await o.sleep(Math.min(left, WAIT_TICKS_MS[Math.min(tick, WAIT_TICKS_MS.length - 1)]!));
    const look = (tick + 1) % EXPIRED_EVERY_TICKS === 0;
    pulled = await pull(db, sub, again, { ...o, redriving, look, now: o.clock() });
    redriving &&= !pulled.redriveEnded;
  }
  return { ...pulled, acked: first.acked, redriveEnded: o.redriving && !redriving };
}
