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
//   fresh       lua/pull.ts: [XACK] + XREADGROUP + XCLAIM   run again: what the lost run took is
//               (lease), within a byte budget               leased, and comes back when that
//                                                           lease runs out
//   look        [XACK] + XPENDING IDLE base                 repeated: a read (and XACK)
//   claim       XCLAIM min-idle base IDLE lease             repeated: the repeat claims nothing
//                                                           (the first run leased them), so they
//                                                           come back when that lease runs out
//   capped      XREADGROUP > (a look that found none, a     once; then [XACK] again and `adopt`:
//               long-poll tick), then XCLAIM (lease)        this consumer's entries still without
//                                                           a lease are leased and handed out
//   skip        XACK (messages the types filter leaves out) repeated: acks the same
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
// Bytes. A pull's reply stays within PULL_REPLY_BYTES of message data. The script reads as many
// as the largest message seen so far allows and checks the budget itself; the other reads, which
// cannot, take only as many as would fit if every message were MAX_MESSAGE_BYTES (`safeCount`).

import { stateField } from "./keys.ts";
import { DEAD_LETTER_LUA } from "./lua/dead-letter.ts";
import { PULL_LUA } from "./lua/pull.ts";
import {
  ackIds,
  channelQueue,
  claimLeased,
  LEASE_BASE_MS,
  leaseIdle,
  MAX_VISIBILITY_MS,
  type Queue,
  redriveQueue,
  setLease,
  splitIds,
} from "./pull-lease.ts";
import { endRedrive } from "./pull-redrive.ts";
import {
  asArray,
  asEntries,
  asNumber,
  asStreams,
  asString,
  type Db,
  isOutcomeUnknown,
  replyOf,
  runScript,
  type StreamEntry,
} from "./redis.ts";
import { matchesTypes, type Subscription } from "./subscription.ts";

/** Upstash refuses XREADGROUP once a consumer's pending entries + COUNT would pass this. */
export const PENDING_LIMIT = 1000;
/**
 * Bytes of message data one pull may return at most: under Upstash's 10 MB reply, and a small
 * share of a Worker's 128 MB (the reply is held twice: as Upstash's JSON and as the answer).
 */
export const PULL_REPLY_BYTES = 8 * 1024 * 1024;

export interface PulledMessage {
  /** Its id in its queue: the message's own, or "0-<n>" for a redriven message. */
  id: string;
  type: string | null;
  /** The stored JSON text of the message's data. */
  data: string;
  publishedAt: string;
  attempt: number;
  /** A redriven message's original id. */
  redrivenFrom?: string;
}

export interface PullRequest {
  max: number;
  visibilityTimeoutMs: number;
  consumer: string;
  /** Ids the consumer is done with: acked before this pull looks for messages. */
  ack?: string[];
}

/** What a pull took, how many of its `ack` ids were pending (now acked), and its largest data. */
export interface Pulled {
  messages: PulledMessage[];
  acked: number;
  /** Bytes of the largest message this pull read (0: none), to size the next one. */
  largest: number;
  /** The redrive stream was found empty and its marker removed: pulls need not look there. */
  redriveEnded?: boolean;
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

export interface DeadLetterBounds {
  maxAgeMs: number;
  maxMessages: number;
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
    ids.channel.length > 0 ? ackIds(db, main, ids.channel) : 0,
    ids.redrive.length > 0 ? ackIds(db, redrive, ids.redrive) : 0,
  ]);
  const acked = mainAcked + redriveAcked;
  const plain = { ...req, ack: [] };
  let redriveEnded = false;
  if (o.redriving) {
    const redriven = await pullFrom(db, sub, redrive, plain, { ...o, look: true });
    if (redriven.messages.length > 0) return { ...redriven, acked };
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
    if (messages.length > 0) return { messages, acked, largest: largestOf(messages) };
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

/**
 * Acks `req.ack`, reads and leases up to `count` new messages: lua/pull.ts, on db.redis. For the
 * channel (its XACK deletes nothing: not for the redrive stream).
 */
function readFresh(
  db: Db,
  sub: Subscription,
  q: Queue,
  req: PullRequest,
  count: number,
): Promise<Pulled> {
  return withinLimit(req.ack ?? [], count, async (n, ack) => {
    const args = [q.group, req.consumer, String(n), leaseIdle(req.visibilityTimeoutMs)];
    args.push(String(LEASE_BASE_MS), String(PULL_REPLY_BYTES), ...ack);
    const [acked, read, largest] = asArray(await runScript(db.redis, PULL_LUA, [q.stream], args));
    if (typeof read === "string") throw new TooManyPending(refusedAt(read), asNumber(acked));
    const messages = await skipUnwanted(db, sub, q, asEntries(read));
    return { messages, acked: asNumber(acked), largest: asNumber(largest) };
  });
}

/**
 * [XACK of `req.ack`] + XREADGROUP > of up to `count` (on db.once: a repeat would take other
 * entries), then their lease. A lost reply sends the acks again and adopts what the read took.
 */
export function readCapped(
  db: Db,
  sub: Subscription,
  q: Queue,
  req: PullRequest,
  count: number,
): Promise<Pulled> {
  return withinLimit(req.ack ?? [], count, async (n, ack) => {
    let read: { entries: StreamEntry[]; acked: number };
    try {
      read = await ackAndRead(db, q, req.consumer, n, ack);
    } catch (error) {
      if (!isOutcomeUnknown(error)) throw error;
      const acked = ack.length > 0 ? await ackIds(db, q, ack) : 0;
      const messages = await adopt(db, q, req, n);
      return { messages, acked, largest: largestOf(messages) };
    }
    const ids = read.entries.map((e) => e.id);
    if (ids.length > 0) await setLease(db, q, req.consumer, ids, req.visibilityTimeoutMs);
    const messages = await skipUnwanted(db, sub, q, read.entries);
    return { messages, acked: read.acked, largest: largestOf(messages) };
  });
}

async function ackAndRead(db: Db, q: Queue, consumer: string, n: number, ack: string[]) {
  const pipeline = db.once.pipeline();
  if (ack.length > 0) pipeline.xack(q.stream, q.group, ack);
  pipeline.xreadgroup(q.group, consumer, q.stream, ">", { count: n });
  const replies = await pipeline.exec({ keepErrors: true });
  const acked = ack.length > 0 ? asNumber(replyOf(replies[0]!)) : 0;
  const last = replies.at(-1)!;
  if (last.error) throw new TooManyPending(refusedAt(last.error), acked);
  return { entries: asStreams(last.result).get(q.stream) ?? [], acked };
}

/**
 * Runs `read` for `count` with the acks; when Upstash refuses it for the pending limit, once more
 * for the room left (without the acks: they are done), or TooManyPending if there is none.
 */
async function withinLimit(
  ack: string[],
  count: number,
  read: (n: number, ack: string[]) => Promise<Pulled>,
): Promise<Pulled> {
  try {
    return await read(count, ack);
  } catch (error) {
    if (!(error instanceof TooManyPending)) throw error;
    const room = PENDING_LIMIT - error.pending;
    if (room <= 0 || room >= count) throw error;
    return { ...(await read(room, [])), acked: error.acked };
  }
}

/** Acks the entries the subscription's types filter leaves out; the rest as messages. */
async function skipUnwanted(db: Db, sub: Subscription, q: Queue, entries: StreamEntry[]) {
  const wanted: StreamEntry[] = [];
  const skipped: string[] = [];
  for (const e of entries) {
    if (matchesTypes(sub.types, e.fields?.t ?? null)) wanted.push(e);
    else skipped.push(e.id);
  }
  if (skipped.length > 0) await ackIds(db, q, skipped);
  return toMessages(wanted, () => 1);
}

/** The pending count Upstash's refusal of an XREADGROUP names; any other error is thrown. */
function refusedAt(error: string): number {
  if (!error.includes("XReadGroup is cancelled")) replyOf({ error }); // thrown as the client would
  const match = /Current PEL size: (\d+)/.exec(error);
  return match ? Number(match[1]) : PENDING_LIMIT;
}

/**
 * After an XREADGROUP whose reply was lost: the consumer's entries that never got a lease (idle
 * below LEASE_BASE_MS - MAX_VISIBILITY_MS: a leased entry's idle starts at or above that) are
 * the ones it took. Leased and handed out now; safe to repeat (a repeat finds them leased).
 */
async function adopt(db: Db, q: Queue, req: PullRequest, count: number) {
  const list = asArray(
    await db.redis.exec([
      "XPENDING",
      q.stream,
      q.group,
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
    await claimLeased(db, q, req.consumer, unleased, req.visibilityTimeoutMs),
  );
  // XCLAIM without JUSTID counted one more delivery: these are still their first attempt.
  return toMessages(claimed, () => 1);
}

function toMessages(entries: StreamEntry[], attempt: (id: string) => number): PulledMessage[] {
  // The messages of one publish share its millisecond, so its ISO text is made once (a Date and
  // toISOString per message were a sixth of a 1,000-message pull's time in the Worker).
  let ms = "";
  let iso = "";
  return entries.map((entry) => {
    const fields = entry.fields ?? {};
    const published = fields.o ?? entry.id; // a redriven message's original id
    const time = published.slice(0, published.indexOf("-"));
    if (time !== ms) {
      ms = time;
      iso = new Date(Number(time)).toISOString();
    }
    const message: PulledMessage = {
      id: entry.id,
      type: fields.t ?? null,
      data: fields.d ?? "null",
      publishedAt: iso,
      attempt: attempt(entry.id),
    };
    if (fields.o) message.redrivenFrom = fields.o;
    return message;
  });
}

const largestOf = (messages: PulledMessage[]) =>
  messages.reduce((max, m) => Math.max(max, m.data.length), 0);

async function deadLetter(
  db: Db,
  sub: Subscription,
  q: Queue,
  consumer: string,
  dead: Expired[],
  bounds: DeadLetterBounds & { now: number },
) {
  const { keys } = db;
  // A dead letter's id is its time of death: those before this one are past the maximum age.
  const minId = `${Math.max(0, bounds.now - bounds.maxAgeMs)}-0`;
  const args = [q.group, consumer, q.redrive ? "1" : "0", minId, String(bounds.maxMessages)];
  args.push(stateField(sub.name, "deadLettersExpired"), stateField(sub.name, "deadLettersDropped"));
  for (const d of dead) {
    args.push(d.id, String(d.deliveries), `not acked after ${d.deliveries} pulls (maxAttempts)`);
  }
  await runScript(
    db.redis,
    DEAD_LETTER_LUA,
    [q.stream, keys.deadLetters(sub.channel, sub.name), keys.state(sub.channel)],
    args,
  );
}
