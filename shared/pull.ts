// Pull subscriptions: consumers take a subscription's messages over HTTP instead of receiving
// webhooks. The subscription's consumer group on the channel stream is the whole queue; each
// pulled message is leased to its consumer until it is acked (shared/pull-lease.ts).
//
// A pull acks what it carries (`ack`), then takes leases that ran out if it looks for them, or
// else new messages. Looking costs a round trip, so a pull looks only when its caller says so
// (routes/pull.ts: at most once a second per isolate and subscription, and after a nack there).
// Each call, its cost, and what happens when its reply is lost (shared/redis.ts):
//
//   call        commands                                    reply lost
//   read        the pull script, or a capped XREADGROUP     see shared/pull-read.ts
//   look        [XACK] + XPENDING IDLE base                 repeated: a read (and XACK)
//   claim       XCLAIM min-idle base IDLE lease             repeated: the repeat claims nothing
//                                                           (the first run leased them), so they
//                                                           come back when that lease runs out
//   deadLetter  lua/dead-letter.ts                          repeated: parks only the pending
//
// So a pull that returns new messages costs 3 commands (the script, or XPENDING + XREADGROUP +
// XCLAIM when it looks); one that takes over leases that ran out, 2 (XPENDING + XCLAIM); one that
// finds nothing, 2 (1 as a long-poll tick). +1 XACK when it carries acks or the types filter
// skipped some, + the dead-letter script when a lease ran out for the last time. A pull whose
// reply is lost (here or on the way to the consumer) loses no message: what it took comes back
// when its lease runs out, with `attempt` counted.
//
// Redrive. While dead letters put back wait in the subscription's redrive stream
// (shared/pull-redrive.ts), a pull serves them first, from that stream, always looking for
// expired leases there, with its acks made on their own first; when the redrive stream is empty,
// the subscription's redrive marker goes and pulls are back to the above.
//
// A pull that does not look runs the pull script; one that looks and finds no expired lease reads
// with a capped XREADGROUP (shared/pull-read.ts), as a long-poll tick does.

import { type DeadLetterBounds, parkPending } from "./dead-letters.ts";
import {
  ackIds,
  channelQueue,
  claimLeased,
  LEASE_BASE_MS,
  type Queue,
  redriveQueue,
  splitIds,
} from "./pull-lease.ts";
import {
  type Pulled,
  type PulledMessage,
  type PullRequest,
  pullCount,
  pulledOf,
  readCapped,
  readFresh,
  TooManyPending,
  toMessages,
} from "./pull-read.ts";
import { endRedrive } from "./pull-redrive.ts";
import { asArray, asEntries, asNumber, asString, type Db } from "./redis.ts";
import type { Subscription } from "./subscription.ts";

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
    ids.channel.length > 0 ? ackIds(db, main, ids.channel) : 0,
    ids.redrive.length > 0 ? ackIds(db, redrive, ids.redrive) : 0,
  ]);
  const acked = mainAcked + redriveAcked;
  const plain = { ...req, ack: [] };
  let redriveEnded = false;
  if (o.redriving) {
    const redriven = await pullFrom(db, sub, redrive, plain, { ...o, look: true });
    if (redriven.count > 0) return { ...redriven, acked };
    redriveEnded = await endRedrive(db, sub);
  }
  return { ...(await pullFrom(db, sub, main, plain, o)), acked, redriveEnded };
}

/** A pull from one queue: the script, or a look and then a capped read. */
async function pullFrom(
  db: Db,
  sub: Subscription,
  q: Queue,
  req: PullRequest,
  o: PullOptions,
): Promise<Pulled> {
  const safeCount = pullCount(req.max, o.maxMessageBytes);
  if (!o.look) {
    return readFresh(db, sub, q, req, pullCount(req.max, o.largestSeen || o.maxMessageBytes));
  }
  const { acked, expired } = await ackAndLook(db, q, req, safeCount);
  if (expired.length > 0) {
    const messages = await claimExpired(db, sub, q, req, expired, o);
    if (messages.length > 0) return { ...pulledOf(messages), acked };
  }
  try {
    const fresh = await readCapped(db, sub, q, { ...req, ack: [] }, safeCount);
    return { ...fresh, acked };
  } catch (error) {
    if (!(error instanceof TooManyPending)) throw error;
    throw new TooManyPending(error.pending, acked); // the acks were made by the look
  }
}

interface Expired {
  id: string;
  deliveries: number;
}

/** XACK of `req.ack` and XPENDING IDLE for up to `count` leases that ran out: safe to repeat. */
async function ackAndLook(db: Db, q: Queue, req: PullRequest, count: number) {
  const ids = req.ack ?? [];
  const pipeline = db.redis.pipeline();
  if (ids.length > 0) pipeline.xack(q.stream, q.group, ids);
  pipeline.xpending(q.stream, q.group, "-", "+", count, { idleTime: LEASE_BASE_MS });
  const replies = await pipeline.exec<unknown[]>();
  const expired: Expired[] = asArray(replies.at(-1)).map((raw) => {
    const [id, , , deliveries] = asArray(raw);
    return { id: asString(id), deliveries: asNumber(deliveries) };
  });
  return { acked: ids.length > 0 ? asNumber(replies[0]) : 0, expired };
}

async function claimExpired(
  db: Db,
  sub: Subscription,
  q: Queue,
  req: PullRequest,
  expired: Expired[],
  o: PullOptions,
): Promise<PulledMessage[]> {
  const dead = expired.filter((e) => e.deliveries >= sub.maxAttempts);
  const live = expired.filter((e) => e.deliveries < sub.maxAttempts);
  if (dead.length > 0)
    await deadLetter(db, sub, q, req.consumer, dead, { ...o.deadLetters, now: o.now });
  if (live.length === 0) return [];
  // min-idle LEASE_BASE_MS: an entry another pull took over meanwhile is not taken twice.
  const ids = live.map((e) => e.id);
  const claimed = asEntries(
    await claimLeased(db, q, req.consumer, ids, req.visibilityTimeoutMs, LEASE_BASE_MS),
  );
  const attempts = new Map(live.map((e) => [e.id, e.deliveries + 1]));
  return toMessages(claimed, (id) => attempts.get(id) ?? 1);
}

async function deadLetter(
  db: Db,
  sub: Subscription,
  q: Queue,
  consumer: string,
  dead: Expired[],
  bounds: DeadLetterBounds & { now: number },
) {
  const from = {
    channel: sub.channel,
    subscription: sub.name,
    stream: q.stream,
    group: q.group,
    consumer,
    redrive: q.redrive,
  };
  const letters = dead.map((d) => ({
    id: d.id,
    attempts: d.deliveries,
    error: `not acked after ${d.deliveries} pulls (maxAttempts)`,
  }));
  await parkPending(db, from, letters, bounds);
}
