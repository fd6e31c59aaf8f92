// Delayed messages: published now, entering their channel later (at `notBefore`, or `delayMs`
// after the publish), when every subscriber, push or pull, receives them like any other.
//
//   publish   the publish script stores them (lua/publish.ts): per channel a ZSET of due times and
//             a HASH of the messages (keys.ts), and the channel's timer member `delay:<ch>` in
//             {p}:due at the earliest due time; the caller sends a timer task for that time when
//             a delivery queue is bound
//   enter     when the timer comes due (the cron finds it; a timer task comes at the second), the
//             worker lets the due ones in, in chunks (lua/enter.ts: `enterDue` here): appended,
//             subscribers woken and the channel trimmed as after a publish
//   list      a page by due time (lua/delayed-page.ts)
//   cancel    ZREM + HDEL, while it waits
//
// The id publish answers for a delayed message is "d<nonce>-<index>" (the publish request's
// nonce, the message's index in it): no stream id has a letter, so it never collides with a
// message's id, and a lost reply's recovery knows it. It is not the message's id in the channel:
// the entry added when it enters gets a stream id (its time), which is what is acked, replayed
// and deduplicated by; every read of the message (webhooks, pulls, history) carries the publish's
// id beside it as `delayedId`.
//
// Cost: nothing per cron while none is due (the timer member waits in {p}:due's ZRANGE), and
// about one command per message entering (enter.ts).

import type { RetentionConfig } from "./config.ts";
import {
  CHANNEL_FIELD_PREFIX,
  duePrefixes,
  MARKER_SEPARATOR,
  retentionField,
  sweepMember,
  timerMember,
  trimField,
} from "./keys.ts";
import { DELAYED_PAGE_LUA } from "./lua/delayed-page.ts";
import { ENTER_LUA } from "./lua/enter.ts";
import { asArray, asNumber, asOptionalString, asString, type Db, runScript } from "./redis.ts";
import {
  appendKeys,
  JOIN_AFTER_MS,
  PAGE_BYTES,
  parseWoken,
  retentionArgs,
  type WokenSubscriber,
} from "./streams.ts";

/** The longest a message may be delayed: 7 days (and never longer than its channel keeps it). */
export const MAX_DELAY_MS = 7 * 24 * 3_600_000;

/** A delayed message's id: "d", its publish's 16-hex nonce, "-", its index in the publish. */
export const DELAYED_ID = /^d[0-9a-f]{16}-\d{1,4}$/;

/** A page cursor: the last message's due time (ms) and id. */
export const DELAYED_CURSOR = /^(\d{1,16}):(d[0-9a-f]{16}-\d{1,4})$/;

export interface DelayedMessage {
  id: string;
  type: string | null;
  /** The data as the JSON text it was published with. */
  data: string;
  /** When it enters the channel (ISO 8601). */
  notBefore: string;
  /** When it was published (ISO 8601). */
  publishedAt: string;
  traceparent?: string;
  tracestate?: string;
  /** The ordering key it was published with (lua/publish.ts), when it had one. */
  orderingKey?: string;
}

/**
 * A page of the channel's delayed messages, earliest due first, after `after` (a `next` of an
 * earlier page); null when the channel does not exist.
 */
export async function listDelayed(
  db: Db,
  channel: string,
  page: { after?: string | undefined; limit: number },
): Promise<{ messages: DelayedMessage[]; next: string | null } | null> {
  const cursor = page.after ? DELAYED_CURSOR.exec(page.after) : null;
  const { keys } = db;
  const [exists, flat, more] = asArray(
    await runScript(
      db.redis,
      DELAYED_PAGE_LUA,
      [keys.delayed(channel), keys.delayedMessages(channel), keys.channel(channel)],
      [cursor?.[1] ?? "", cursor?.[2] ?? "", String(page.limit), String(PAGE_BYTES)],
    ),
  );
  if (asNumber(exists) === 0) return null;
  const rows = asArray(flat);
  const messages: DelayedMessage[] = [];
  let next: string | null = null;
  for (let i = 0; i + 2 < rows.length; i += 3) {
    const id = asString(rows[i]);
    const due = asString(rows[i + 1]);
    next = `${due}:${id}`;
    const stored = asString(rows[i + 2]);
    // Its data missing (never, unless the hash was edited by hand): nothing to show.
    if (stored !== "") messages.push(parseStored(id, Number(due), stored));
  }
  return { messages, next: asNumber(more) === 1 ? next : null };
}

// "<published ms>\n<type>\n<traceparent>\n<tracestate>\n[<ordering key>\n]<data>" (lua/publish.ts:
// data holds no raw newline, so a sixth line is a key's).
function parseStored(id: string, dueAt: number, stored: string): DelayedMessage {
  const lines = stored.split("\n");
  const [publishedMs = "", type = "", traceparent = "", tracestate = ""] = lines;
  const orderingKey = lines.length > 5 ? lines[4] : undefined;
  const data = lines.slice(orderingKey === undefined ? 4 : 5).join("\n");
  return {
    ...(orderingKey === undefined ? {} : { orderingKey }),
    id,
    type: type === "" ? null : type,
    data,
    notBefore: new Date(dueAt).toISOString(),
    publishedAt: new Date(Number(publishedMs)).toISOString(),
    ...(traceparent === "" ? {} : { traceparent }),
    ...(tracestate === "" ? {} : { tracestate }),
  };
}

/**
 * Cancels a delayed message that has not entered its channel; false when there is none by that id
 * (never published, cancelled already, or entered). Safe to repeat (a repeat answers false).
 * 2 commands (ZREM, HDEL) in one request: ZREM's reply says whether it waited.
 */
export async function cancelDelayed(db: Db, channel: string, id: string): Promise<boolean> {
  const [removed] = await db.redis
    .pipeline()
    .zrem(db.keys.delayed(channel), id)
    .hdel(db.keys.delayedMessages(channel), id)
    .exec<[unknown, unknown]>();
  return asNumber(removed) === 1;
}

export interface Entered {
  /** Messages that entered the channel. */
  entered: number;
  /** Subscribers woken, to kick as after a publish. */
  woken: WokenSubscriber[];
  /** When the next is due; null when none waits. */
  nextAt: number | null;
  /** More are due than one run lets in: run again. */
  more: boolean;
  /** The timer member was moved (this run, not a concurrent one, owns the next timer task). */
  rescheduled: boolean;
  /** What Redis refused (an XADD for size, a wake-up), or null. */
  refused: string | null;
}

// What one run of lua/enter.ts lets in at most: 500 messages (about 1.03 commands each), and
// 8 MiB of their data (eight publish requests' worth), so that a run holds Redis briefly.
const ENTER_LIMIT = 500;
const ENTER_BYTES = 8 * 1024 * 1024;

/**
 * Lets the channel's delayed messages due by `dueBy` into it, one run's worth (lua/enter.ts), its
 * subscribers woken at `now`: `more` when more are due. Safe to repeat, and to run twice at once:
 * a message enters once.
 */
export async function enterDue(
  db: Db,
  channel: string,
  time: { dueBy: number; now: number },
  retention: RetentionConfig,
): Promise<Entered> {
  const { keys } = db;
  const prefixes = duePrefixes(channel);
  const reply = asArray(
    await runScript(db.redis, ENTER_LUA, appendKeys(keys, channel), [
      channel,
      String(time.now),
      String(ENTER_LIMIT),
      timerMember("delay", channel),
      prefixes.wake,
      prefixes.retry,
      MARKER_SEPARATOR,
      ...retentionArgs(retention),
      CHANNEL_FIELD_PREFIX,
      retentionField,
      trimField,
      String(JOIN_AFTER_MS),
      String(ENTER_BYTES),
      String(time.dueBy),
      sweepMember(channel),
    ]),
  );
  const [entered, woken, nextAt, more, refused, rescheduled] = reply;
  const next = asOptionalString(nextAt) ?? "";
  const refusal = asOptionalString(refused) ?? "";
  return {
    entered: asNumber(entered),
    woken: parseWoken(woken),
    nextAt: next === "" ? null : asNumber(next),
    more: asNumber(more) === 1,
    rescheduled: asNumber(rescheduled) === 1,
    refused: refusal === "" ? null : refusal,
  };
}
