// Reading a pull subscription's new messages from one of its queues (shared/pull-lease.ts), and
// what a pull answers. Each read, its cost, and what happens when its reply is lost
// (shared/redis.ts):
//
//   read        commands                                    reply lost
//   fresh       lua/pull.ts: [XACK] + XREADGROUP + XCLAIM   run again: what the lost run took is
//               (lease), within a byte budget               leased, and comes back when that
//                                                           lease runs out
//   capped      [XACK] + XREADGROUP >, then XCLAIM (lease)  once; then [XACK] again and `adopt`:
//                                                           this consumer's entries still without
//                                                           a lease are leased and handed out
//   skip        XACK (messages the types filter leaves      repeated: acks the same
//               out, after a capped read; the script
//               acks its own)
//
// The script also writes the answer's JSON text of its messages (and applies the types filter),
// so a pull that runs it does no work per message here; the other reads build the same text from
// their entries (pulledOf).
//
// Bytes. A pull's reply stays within PULL_REPLY_BYTES of message data. The script reads as many
// as the largest message seen so far allows and checks the budget itself; the capped read, which
// cannot, takes only as many as would fit if every message were MAX_MESSAGE_BYTES.

import { PULL_LUA } from "./lua/pull.ts";
import {
  ackIds,
  claimLeased,
  LEASE_BASE_MS,
  leaseIdle,
  MAX_VISIBILITY_MS,
  type Queue,
  setLease,
} from "./pull-lease.ts";
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
  /** The messages as the JSON text of an array of PulledMessage, as the answer carries it. */
  messages: string;
  /** How many messages. */
  count: number;
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

/**
 * Acks `req.ack`, reads and leases up to `count` new messages: lua/pull.ts, on db.redis. For the
 * channel (its XACK deletes nothing: not for the redrive stream).
 */
export function readFresh(
  db: Db,
  sub: Subscription,
  q: Queue,
  req: PullRequest,
  count: number,
): Promise<Pulled> {
  return withinLimit(req.ack ?? [], count, async (n, ack) => {
    const args = [q.group, req.consumer, String(n), leaseIdle(req.visibilityTimeoutMs)];
    const types = sub.types ?? [];
    args.push(String(LEASE_BASE_MS), String(PULL_REPLY_BYTES), String(types.length), ...types);
    args.push(...ack);
    const reply = asArray(await runScript(db.redis, PULL_LUA, [q.stream], args));
    const [acked, messages, count, largest] = reply;
    if (reply.length === 2)
      throw new TooManyPending(refusedAt(asString(messages)), asNumber(acked));
    return {
      messages: asString(messages),
      count: asNumber(count),
      acked: asNumber(acked),
      largest: asNumber(largest),
    };
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
      return { ...pulledOf(await adopt(db, q, req, n)), acked };
    }
    // The lease and the ack of what the types filter leaves out at once: either order ends the
    // same (an acked entry is no longer pending, so XCLAIM passes it by).
    const ids = read.entries.map((e) => e.id);
    const { wanted, skipped } = byTypes(sub, read.entries);
    await Promise.all([
      ids.length > 0 ? setLease(db, q, req.consumer, ids, req.visibilityTimeoutMs) : 0,
      skipped.length > 0 ? ackIds(db, q, skipped) : 0,
    ]);
    return { ...pulledOf(toMessages(wanted, () => 1)), acked: read.acked };
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

/** The entries the subscription's types filter keeps, and the ids of those it leaves out. */
function byTypes(sub: Subscription, entries: StreamEntry[]) {
  const wanted: StreamEntry[] = [];
  const skipped: string[] = [];
  for (const e of entries) {
    if (matchesTypes(sub.types, e.fields?.t ?? null)) wanted.push(e);
    else skipped.push(e.id);
  }
  return { wanted, skipped };
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

export function toMessages(
  entries: StreamEntry[],
  attempt: (id: string) => number,
): PulledMessage[] {
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

/** Messages read in the Worker, as a pull answers them (lua/pull.ts writes the same text). */
export function pulledOf(messages: PulledMessage[]): Omit<Pulled, "acked"> {
  const parts = messages.map((m) => {
    const from = m.redrivenFrom ? `,"redrivenFrom":"${m.redrivenFrom}"` : "";
    return `{"id":"${m.id}","type":${JSON.stringify(m.type)},"data":${m.data},"publishedAt":"${m.publishedAt}","attempt":${m.attempt}${from}}`;
  });
  return { messages: `[${parts.join(",")}]`, count: messages.length, largest: largestOf(messages) };
}
