// Pull: a policy on the delivery engine (shared/engine/), for consumers that take a subscription's
// messages over HTTP instead of receiving webhooks. A pull is one take by the consumer it names:
// it acks what the consumer is done with, claims messages whose visibility timeout ran out if it
// looks, and reads new ones, invisible to other consumers for its visibility timeout.
//
// A consumer's reads need no lease: they stay with it (as the reader pullReader names: its name,
// and its visibility timeout unless the default), visible again that long after their read (their
// idle time in the group's pending list, as a push reader's). Nacks and extends leave theirs with
// the holder (WAITING_ROOM, lua/take.ts), set to come back when asked. Looking costs the XPENDING
// summary of the group, one XPENDING per reader holding messages and one for the holder's, so a
// pull looks only when its caller says so (routes/pull.ts: at most once a second per isolate and
// subscription, and after a nack there). Each call, its cost, and what happens when its reply is
// lost (shared/redis.ts):
//
//   call        commands                                        reply lost
//   take        lua/take.ts: [XACK] + XREADGROUP; + XPENDING     repeated (db.redis): what the lost
//               summary + 1 per reader + 1 (+ XCLAIM) looking    run took stays the consumer's, and
//                                                                comes back when its visibility runs
//                                                                out, attempt counted
//   park        lua/dead-letter.ts, when a lease ran out for     repeated: parks only the pending
//               the last time (maxAttempts)
//
// So a pull that returns new messages costs 2 commands, one that finds nothing 2; +1 XACK when it
// carries acks (or the types filter skipped some).
//
// Redrive. While dead letters put back wait in the subscription's redrive stream
// (shared/engine/dead-letters.ts), a pull serves them first, from that stream, always looking
// for expired leases there, with its acks made on their own first; when the redrive stream is
// empty, the subscription's redrive marker goes and pulls are back to the above.

import { type DeadLetterBounds, endRedrive, park } from "../shared/engine/dead-letters.ts";
import {
  channelQueue,
  PULL_VISIBILITY_MS,
  pullReader,
  type Queue,
  redriveQueue,
  splitIds,
  WAITING_ROOM,
} from "../shared/engine/queue.ts";
import { ack } from "../shared/engine/settle.ts";
import { type Joined, PENDING_LIMIT, type TakeResult, take } from "../shared/engine/take.ts";
import type { Db } from "../shared/redis.ts";
import type { Subscription } from "../shared/subscription.ts";

/**
 * Bytes of message data one pull may return at most: under Upstash's 10 MB reply, and a small
 * share of a Worker's 128 MB (the reply is held twice: as Upstash's JSON and as the answer).
 */
export const PULL_REPLY_BYTES = 8 * 1024 * 1024;

export interface PullRequest {
  max: number;
  visibilityTimeoutMs: number;
  consumer: string;
  /** Ids the consumer is done with: acked before this pull looks for messages. */
  ack?: string[];
}

export interface PullOptions {
  /** Whether to look for leases that ran out before reading new messages. */
  look: boolean;
  /** Largest message data seen on this subscription so far (bytes); 0 when unknown. */
  largestSeen: number;
  /** The subscription has its redrive marker: redriven messages may wait. */
  redriving: boolean;
  maxMessageBytes: number;
  now: number;
  deadLetters: DeadLetterBounds;
}

/** What a pull took, how many of its `ack` ids were pending (now acked), and its largest data. */
export interface Pulled {
  /** Their JSON texts, joined as the answer carries them (lua/encode.ts). */
  messages: Joined;
  acked: number;
  /** Bytes of the largest message this pull read (0: none), to size the next one. */
  largest: number;
  /** The redrive stream was found empty and its marker removed: pulls need not look there. */
  redriveEnded?: boolean;
}

/** Upstash refused the read: the consumer holds too many unacked messages. */
export class TooManyPending extends Error {
  override name = "TooManyPending";
  readonly pending: number;
  /** How many of the pull's `ack` ids were acked before the refusal (they stay acked). */
  readonly acked: number;
  constructor(pending: number, acked: number) {
    super(`the consumer holds ${pending} unacked messages`);
    this.pending = pending;
    this.acked = acked;
  }
}

/** How many messages fit PULL_REPLY_BYTES if each were `bytes` large; at least 1, at most `max`. */
export const pullCount = (max: number, bytes: number) =>
  Math.max(1, Math.min(max, Math.floor(PULL_REPLY_BYTES / Math.max(1, bytes))));

/** One pull (see the header). Empty when there is nothing. */
export async function pull(
  db: Db,
  sub: Subscription,
  req: PullRequest,
  o: PullOptions,
): Promise<Pulled> {
  const main = channelQueue(db, sub);
  const ids = splitIds(req.ack ?? []);
  if (!o.redriving && ids.redrive.length === 0) return pullFrom(db, sub, main, req, o);
  const redrive = redriveQueue(db, sub);
  const [mainAcked, redriveAcked] = await Promise.all([
    ack(db, main, ids.channel),
    ack(db, redrive, ids.redrive),
  ]);
  const acked = mainAcked + redriveAcked;
  const plain = { ...req, ack: [] };
  let redriveEnded = false;
  if (o.redriving) {
    const redriven = await pullFrom(db, sub, redrive, plain, { ...o, look: true });
    if (redriven.messages.count > 0) return { ...redriven, acked };
    redriveEnded = await endRedrive(db, sub);
  }
  return { ...(await pullFrom(db, sub, main, plain, o)), acked, redriveEnded };
}

/** A pull from one queue: one take, and the dead letters it found parked. */
async function pullFrom(
  db: Db,
  sub: Subscription,
  q: Queue,
  req: PullRequest,
  o: PullOptions,
): Promise<Pulled> {
  const count = pullCount(req.max, o.largestSeen || o.maxMessageBytes);
  const run = (n: number, acks: string[]) =>
    take(db.redis, db, q, {
      // Its reads are visible again visibilityTimeoutMs after them, which the reader's name says
      // unless it is the default; nacks and extends wait with the holder.
      reader: pullReader(req.consumer, req.visibilityTimeoutMs),
      holder: WAITING_ROOM,
      now: o.now,
      count: n,
      visibilityMs: PULL_VISIBILITY_MS,
      byteBudget: PULL_REPLY_BYTES,
      look: o.look,
      maxAttempts: sub.maxAttempts,
      types: sub.types,
      ack: acks,
      ownIds: true,
      joined: true,
    });
  const acks = req.ack ?? [];
  let taken = await run(count, acks);
  if (taken.refused !== null) {
    // Upstash reads nothing for a consumer past its limit: once more for the room left (the
    // acks are made), or the refusal.
    const room = PENDING_LIMIT - taken.refused;
    if (room <= 0 || room >= count) throw new TooManyPending(taken.refused, taken.acked);
    taken = { ...(await run(room, [])), acked: taken.acked };
    if (taken.refused !== null) throw new TooManyPending(taken.refused, taken.acked);
  }
  await parkDead(db, q, req.consumer, taken, o);
  return { messages: taken.joined ?? NONE, acked: taken.acked, largest: taken.largest };
}

const NONE: Joined = { count: 0, text: "" };

// Leases that ran out for the last time: parked as dead letters (the consumer never acked them).
async function parkDead(db: Db, q: Queue, consumer: string, t: TakeResult, o: PullOptions) {
  if (t.dead.length === 0) return;
  const letters = t.dead.map((d) => ({
    id: d.entryId,
    attempts: d.deliveries,
    error: `not acked after ${d.deliveries} pulls (maxAttempts)`,
  }));
  await park(db, q, consumer, letters, { ...o.deadLetters, now: o.now });
}
