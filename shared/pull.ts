// Pull subscriptions: consumers take a subscription's messages over HTTP instead of receiving
// webhooks. The subscription's consumer group on the channel stream is the whole queue: a pulled
// message is pending in the group, owned by the consumer that pulled it, until it is acked.
//
// Visibility. Each pending entry's lease is kept in the entry itself, as its idle time: handing an
// entry out sets it (XCLAIM IDLE) to LEASE_BASE_MS - visibilityTimeoutMs, so the entry's idle time
// reaches LEASE_BASE_MS exactly when its visibility timeout runs out. "Which leases ran out" is
// then one question to the whole group, whatever timeouts the pulls asked for: XPENDING IDLE
// LEASE_BASE_MS. The base is above the longest timeout (12 h), so a fresh lease is never expired;
// IDLE is counted on Redis's clock, so no Worker's clock is trusted. An entry XREADGROUP has just
// taken (idle 0) holds a lease of LEASE_BASE_MS until the lease step sets its own.
//
// Each call, its cost, and what happens when its reply is lost (shared/redis.ts):
//
//   call        commands                                      reply lost
//   expired     XPENDING IDLE base - + n                      repeated: a read
//   claim       XCLAIM min-idle base IDLE lease               repeated: the repeat claims nothing
//                                                             (the first run leased them), so they
//                                                             come back when that lease runs out
//   read        XREADGROUP > COUNT n                          once; then `adopt`: this consumer's
//                                                             entries still without a lease (idle
//                                                             < base - 12 h) are leased and handed
//                                                             out (XPENDING + XCLAIM, rare)
//   lease       XCLAIM min-idle 0 IDLE lease JUSTID           repeated: sets the same idle time
//   skip        XACK (messages the types filter leaves out)   repeated: acks the same
//   deadLetter  lua/dead-letter.ts                            repeated: parks only the pending
//   ack         XACK                                          repeated: the repeat counts 0
//   nack/extend XCLAIM min-idle 0 IDLE t JUSTID               repeated: sets the same idle time
//
// So a pull that returns messages costs 2 (claim: XPENDING + XCLAIM) or 3 (read: XPENDING +
// XREADGROUP + XCLAIM) commands; +1 XACK when the types filter skipped some, + the dead-letter
// script's cost when a lease ran out for the last time. An ack, nack or extend costs 1. A pull
// whose reply is lost (here or on the way to the consumer) loses no message: what it took comes
// back when its lease runs out, with `attempt` counted.

import { DEAD_LETTERED_COUNTER } from "./counters.ts";
import { metricsField, stateField } from "./keys.ts";
import { DEAD_LETTER_LUA } from "./lua/dead-letter.ts";
import {
  asArray,
  asEntries,
  asNumber,
  asStreams,
  asString,
  type Db,
  isOutcomeUnknown,
  runScript,
  type StreamEntry,
} from "./redis.ts";
import { matchesTypes, type Subscription } from "./subscription.ts";

/** Longest visibility timeout (and nack delay) a pull may ask for: 12 h, as Pub/Sub's lease. */
export const MAX_VISIBILITY_MS = 43_200_000;
/** Idle time at which a lease runs out (see the header): above MAX_VISIBILITY_MS. */
export const LEASE_BASE_MS = 86_400_000;
/** Upstash refuses XREADGROUP once a consumer's pending entries + COUNT would pass this. */
export const PENDING_LIMIT = 1000;
/** Bytes of message data one pull may return at most (max x MAX_MESSAGE_BYTES can be 256 MB). */
export const PULL_REPLY_BYTES = 16 * 1024 * 1024;

export interface PulledMessage {
  id: string;
  type: string | null;
  /** The stored JSON text of the message's data. */
  data: string;
  publishedAt: string;
  attempt: number;
}

export interface PullRequest {
  max: number;
  visibilityTimeoutMs: number;
  consumer: string;
}

export class TooManyPending extends Error {
  override name = "TooManyPending";
  readonly pending: number;
  constructor(pending: number) {
    super(`the consumer holds ${pending} unacked messages`);
    this.pending = pending;
  }
}

/** How many messages one pull may take: `max`, within PULL_REPLY_BYTES of the largest data. */
export const pullCount = (max: number, maxMessageBytes: number) =>
  Math.max(1, Math.min(max, Math.floor(PULL_REPLY_BYTES / maxMessageBytes)));

const leaseIdle = (visibilityMs: number) => String(LEASE_BASE_MS - visibilityMs);

/**
 * One pull: leases that ran out first (taken over from any consumer, attempt counted; those past
 * maxAttempts go to the dead letters instead), or else new messages. Empty when there is nothing.
 * `newOnly` skips the look at expired leases (a long-poll's cheap tick).
 */
export async function pull(
  db: Db,
  sub: Subscription,
  req: PullRequest,
  options: { count: number; newOnly: boolean; now: number; deadLetters: DeadLetterBounds },
): Promise<PulledMessage[]> {
  if (!options.newOnly) {
    const claimed = await claimExpired(db, sub, req, options);
    if (claimed.length > 0) return claimed;
  }
  return readNew(db, sub, req, options.count);
}

interface Expired {
  id: string;
  deliveries: number;
}

async function claimExpired(
  db: Db,
  sub: Subscription,
  req: PullRequest,
  options: { count: number; now: number; deadLetters: DeadLetterBounds },
): Promise<PulledMessage[]> {
  const stream = db.keys.channel(sub.channel);
  const reply = await db.redis.exec([
    "XPENDING",
    stream,
    sub.group,
    "IDLE",
    String(LEASE_BASE_MS),
    "-",
    "+",
    String(options.count),
  ]);
  const expired: Expired[] = asArray(reply).map((raw) => {
    const [id, , , count] = asArray(raw);
    return { id: asString(id), deliveries: asNumber(count) };
  });
  if (expired.length === 0) return [];
  const dead = expired.filter((e) => e.deliveries >= sub.maxAttempts);
  const live = expired.filter((e) => e.deliveries < sub.maxAttempts);
  if (dead.length > 0) {
    await deadLetter(db, sub, req.consumer, dead, { ...options.deadLetters, now: options.now });
  }
  if (live.length === 0) return [];
  // min-idle LEASE_BASE_MS: an entry another pull took over meanwhile is not taken twice.
  const ids = live.map((e) => e.id);
  const claimed = asEntries(
    await claimLeased(db, sub, req.consumer, ids, req.visibilityTimeoutMs, LEASE_BASE_MS),
  );
  const attempts = new Map(live.map((e) => [e.id, e.deliveries + 1]));
  return claimed.map((entry) => toMessage(entry, attempts.get(entry.id) ?? 1));
}

async function readNew(
  db: Db,
  sub: Subscription,
  req: PullRequest,
  count: number,
): Promise<PulledMessage[]> {
  const stream = db.keys.channel(sub.channel);
  let entries: StreamEntry[];
  try {
    entries = await xreadgroup(db, stream, sub.group, req.consumer, count);
  } catch (error) {
    const pending = pendingFromRefusal(error);
    if (pending === null) {
      if (!isOutcomeUnknown(error)) throw error;
      return adopt(db, sub, req, count);
    }
    const room = PENDING_LIMIT - pending;
    if (room <= 0 || room >= count) throw new TooManyPending(pending);
    entries = await xreadgroup(db, stream, sub.group, req.consumer, room);
  }
  if (entries.length === 0) return [];
  const wanted = entries.filter((e) => matchesTypes(sub.types, e.fields?.t ?? null));
  const skipped = entries.filter((e) => !wanted.includes(e));
  await Promise.all([
    wanted.length > 0
      ? setLease(
          db,
          sub,
          req.consumer,
          wanted.map((e) => e.id),
          req.visibilityTimeoutMs,
        )
      : null,
    skipped.length > 0
      ? db.redis.xack(
          stream,
          sub.group,
          skipped.map((e) => e.id),
        )
      : null,
  ]);
  return wanted.map((entry) => toMessage(entry, 1));
}

/** XREADGROUP > on db.once: a repeat would take other entries (see `adopt`). */
async function xreadgroup(db: Db, stream: string, group: string, consumer: string, n: number) {
  const reply = await db.once.exec([
    "XREADGROUP",
    "GROUP",
    group,
    consumer,
    "COUNT",
    String(n),
    "STREAMS",
    stream,
    ">",
  ]);
  return asStreams(reply).get(stream) ?? [];
}

/** The pending count Upstash's refusal of an XREADGROUP names; null for any other error. */
function pendingFromRefusal(error: unknown): number | null {
  if (!(error instanceof Error) || !error.message.includes("XReadGroup is cancelled")) return null;
  const match = /Current PEL size: (\d+)/.exec(error.message);
  return match ? Number(match[1]) : PENDING_LIMIT;
}

/**
 * After an XREADGROUP whose reply was lost: the consumer's entries that never got a lease (idle
 * below LEASE_BASE_MS - MAX_VISIBILITY_MS: a leased entry's idle starts at or above that) are
 * the ones it took. Leased and handed out now; safe to repeat (a repeat finds them leased).
 */
async function adopt(db: Db, sub: Subscription, req: PullRequest, count: number) {
  const stream = db.keys.channel(sub.channel);
  const list = asArray(
    await db.redis.exec([
      "XPENDING",
      stream,
      sub.group,
      "-",
      "+",
      String(PENDING_LIMIT),
      req.consumer,
    ]),
  );
  const unleased = list
    .map((raw) => asArray(raw))
    .filter(([, , idle]) => asNumber(idle) < LEASE_BASE_MS - MAX_VISIBILITY_MS)
    .slice(0, count)
    .map(([id]) => asString(id));
  if (unleased.length === 0) return [];
  const claimed = asEntries(
    await claimLeased(db, sub, req.consumer, unleased, req.visibilityTimeoutMs),
  );
  // XCLAIM without JUSTID counted one more delivery: these are still their first attempt.
  return claimed.map((entry) => toMessage(entry, 1));
}

function toMessage(entry: StreamEntry, attempt: number): PulledMessage {
  const fields = entry.fields ?? {};
  return {
    id: entry.id,
    type: fields.t ?? null,
    data: fields.d ?? "null",
    publishedAt: new Date(Number(entry.id.split("-")[0])).toISOString(),
    attempt,
  };
}

export interface DeadLetterBounds {
  maxAgeMs: number;
  maxMessages: number;
}

async function deadLetter(
  db: Db,
  sub: Subscription,
  consumer: string,
  dead: Expired[],
  bounds: DeadLetterBounds & { now: number },
) {
  const { keys } = db;
  // A dead letter's id is its time of death: those before this one are past the maximum age.
  const minId = `${Math.max(0, bounds.now - bounds.maxAgeMs)}-0`;
  const args = [sub.group, consumer, "0", minId, String(bounds.maxMessages)];
  args.push(stateField(sub.name, "deadLettersExpired"), stateField(sub.name, "deadLettersDropped"));
  args.push(metricsField(sub.name, DEAD_LETTERED_COUNTER));
  for (const d of dead) {
    args.push(d.id, String(d.deliveries), `not acked after ${d.deliveries} pulls (maxAttempts)`);
  }
  await runScript(
    db.redis,
    DEAD_LETTER_LUA,
    [
      keys.channel(sub.channel),
      keys.deadLetters(sub.channel, sub.name),
      keys.state(sub.channel),
      keys.metrics(sub.channel),
    ],
    args,
  );
}

/** XACK: how many of `ids` were pending (and are acked now). */
export async function ack(db: Db, sub: Subscription, ids: string[]): Promise<number> {
  return asNumber(await db.redis.xack(db.keys.channel(sub.channel), sub.group, ids));
}

/**
 * Sets the lease of pending `ids` to run out `inMs` from now (nack: 0 or its delay; extend: the new
 * visibility timeout), owned by `consumer`. Returns how many were pending.
 */
export async function setLease(
  db: Db,
  sub: Subscription,
  consumer: string,
  ids: string[],
  inMs: number,
): Promise<number> {
  return asArray(await claimLeased(db, sub, consumer, ids, inMs, 0, "JUSTID")).length;
}

/**
 * XCLAIM of `ids` for `consumer` (those idle at least `minIdleMs`), with the idle time that
 * makes their lease run out in `visibilityMs` (leaseIdle). Every lease is set here.
 */
function claimLeased(
  db: Db,
  sub: Subscription,
  consumer: string,
  ids: string[],
  visibilityMs: number,
  minIdleMs = 0,
  ...justId: ["JUSTID"] | []
) {
  return db.redis.exec([
    "XCLAIM",
    db.keys.channel(sub.channel),
    sub.group,
    consumer,
    String(minIdleMs),
    ...ids,
    "IDLE",
    leaseIdle(visibilityMs),
    ...justId,
  ]);
}

/** The consumer a nack or extend names when it names none: the one a pull uses by default. */
export const DEFAULT_CONSUMER = "default";
