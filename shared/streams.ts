// Channels and their messages: publish, history, channel info and the channel registry.
//
// A channel is one Redis stream ({p}:ch:<ch>). An entry holds `t` (the message type, absent when
// the publisher gave none) and `d` (the data as the JSON text the publisher sent, re-serialised
// once at publish), `p` and `s` (the publish's W3C traceparent, and its tracestate when it has
// one: shared/trace.ts); the first entry of each publish also holds `n`, its request's nonce (see
// lua/publish.ts). An entry published without a trace context (or before tracing) has no `p`:
// its trace is derived from its id (shared/trace.ts). The entry id is the publish time,
// so `publishedAt` is derived, not stored. A delayed message's entry (shared/delayed.ts) is
// added when it is due, so its id is that time, and it holds `m`, the id its publish answered.

import type { RetentionConfig } from "./config.ts";
import { AppError, InvalidInput } from "./errors.ts";
import {
  CHANNEL_FIELD_PREFIX,
  duePrefixes,
  isSubscriptionField,
  type Keys,
  MARKER_SEPARATOR,
  retentionField,
  sweepMember,
  timerMember,
  trimField,
} from "./keys.ts";
import { PUBLISH_LUA } from "./lua/publish.ts";
import { RETENTION_LUA } from "./lua/retention.ts";
import {
  asArray,
  asEntries,
  asNumber,
  asOptionalString,
  asString,
  type Db,
  isOutcomeUnknown,
  isStorageFull,
  runScript,
  type StreamEntry,
} from "./redis.ts";
import { type Roster, type Rosters, rosterOf, rosters } from "./roster.ts";
import { channelFull, refusalOf, streamBytes } from "./storage.ts";
import { storedTrace, type TraceContext, traceSeed } from "./trace.ts";

export interface NewMessage {
  type?: string | undefined;
  /** The message data as JSON text. */
  data: string;
  /** When it enters the channel (ms, later than the publish's now): a delayed message (delayed.ts). */
  dueAt?: number | undefined;
  /** An ordered subscription delivers the messages of one key one at a time (lua/take.ts). */
  orderingKey?: string | undefined;
}

export interface StoredMessage {
  id: string;
  type: string | null;
  /** The message data as the JSON text it was published with. */
  data: string;
  publishedAt: string;
  /** The publish's W3C traceparent, or the one streamhook derived for it (shared/trace.ts). */
  traceparent: string;
  /** The publish's tracestate, when it had one. */
  tracestate?: string;
  /** A delayed message's id, as its publish answered it (it entered the channel when due). */
  delayedId?: string;
  /** The ordering key it was published with (field `k`), when it had one. */
  orderingKey?: string;
}

/**
 * A subscriber a publish woke: nobody was delivering to it, or its deliverers have had a backlog
 * for JOIN_AFTER_MS; the caller's kick delivers to it (or joins them).
 */
export interface WokenSubscriber {
  name: string;
  /** The subscription as stored (JSON), so the kick needs no further read. */
  json: string;
  /** When its earliest failed message is due again, or null when nothing is pending. */
  retryAt: number | null;
}

export type PublishResult =
  | {
      duplicate: false;
      ids: string[];
      woken: WokenSubscriber[];
      /** The earliest due time of its delayed messages, when it moved the channel's timer earlier. */
      timerAt: number | null;
    }
  | { duplicate: true; ids: string[] };

const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;
/** The longest a channel goes between trims while it is published to (lua/trim.ts). */
export const TRIM_MAX_INTERVAL_MS = 60 * 60 * 1000;

/**
 * The retention arguments of the scripts that trim (publish.ts, enter.ts, sweep.ts), in their
 * order: default max age and max messages ("" none), MAX_UNDELIVERED_AGE_MS, and the least and
 * most time between trims.
 */
export const retentionArgs = (r: RetentionConfig) => [
  r.maxAgeMs === null ? "" : String(r.maxAgeMs),
  r.maxMessages === null ? "" : String(r.maxMessages),
  String(r.maxUndeliveredAgeMs),
  String(r.trimMinIntervalMs),
  String(TRIM_MAX_INTERVAL_MS),
];

/** The keys of the scripts that append to a channel, in their order (publish.ts, enter.ts). */
export const appendKeys = (keys: Keys, channel: string) => [
  keys.channel(channel),
  keys.channels(),
  keys.subscriptions(channel),
  keys.due(),
  keys.state(channel),
  keys.delayed(channel),
  keys.delayedMessages(channel),
];

/**
 * The longest time between two sweeps of a channel with `retention` (lua/trim.ts sweepGap, the
 * same rule): a tenth of its age limits, at least TRIM_MIN_INTERVAL_MS.
 */
export function sweepGapMs(config: RetentionConfig, retention: Retention = config): number {
  const limits = [config.maxUndeliveredAgeMs, retention.maxAgeMs ?? Number.POSITIVE_INFINITY];
  return Math.max(config.trimMinIntervalMs, Math.floor(Math.min(...limits) / 10));
}

/**
 * A subscriber whose deliverers have been busy this long (woken this long ago, and not done) is
 * joined by the next publish's kick: another invocation, up to its maxConcurrency (lua/publish.ts).
 */
export const JOIN_AFTER_MS = 1000;

/**
 * Appends messages in order in one round trip; see lua/publish.ts for the cost. Sent once: if
 * the reply is lost, the script's recover mode (safe to repeat) finds out whether the messages
 * were stored, so a lost reply never stores a publish twice. Throws StorageFull, naming the
 * channel and the limit, when Redis refuses the write for size (nothing written).
 */
export async function publish(
  db: Db,
  channel: string,
  messages: NewMessage[],
  options: {
    idempotencyKey?: string | undefined;
    now: number;
    retention: RetentionConfig;
    /** Kept with every message: the request's; none, and each message's is derived from its id. */
    trace?: TraceContext | undefined;
    /** The isolate's roster copies (shared/roster.ts); a test passes its own to play another. */
    rosters?: Rosters;
  },
): Promise<PublishResult> {
  const { keys } = db;
  const copies = options.rosters ?? rosters;
  // Read once, so a repeat in recover mode passes the same copy as the first try.
  const roster = copies.get(db, channel, options.now);
  const scriptKeys = appendKeys(keys, channel);
  if (options.idempotencyKey) scriptKeys.push(keys.idempotency(channel, options.idempotencyKey));
  const prefixes = duePrefixes(channel);
  const args = (mode: "" | "recover") => {
    const out = [
      channel,
      String(options.now),
      prefixes.wake,
      prefixes.retry,
      MARKER_SEPARATOR,
      String(IDEMPOTENCY_TTL_SECONDS),
      nonce,
      mode,
      ...retentionArgs(options.retention),
      CHANNEL_FIELD_PREFIX,
      retentionField,
      trimField,
      String(JOIN_AFTER_MS),
      options.trace?.traceparent ?? "",
      options.trace?.tracestate ?? "",
      timerMember("delay", channel),
      sweepMember(channel),
      ...rosterArgs(roster),
    ];
    for (const { type, data, dueAt, orderingKey } of messages) {
      const delayed = dueAt !== undefined && dueAt > options.now;
      out.push(type ?? "", data, delayed ? String(dueAt) : "", orderingKey ?? "");
    }
    return out;
  };
  const nonce = randomToken();

  let reply: unknown;
  try {
    reply = await runScript(db.once, PUBLISH_LUA, scriptKeys, args(""));
  } catch (error) {
    // Redis refuses the whole script on a full database (it is not flagged allow-oom).
    if (isStorageFull(error)) throw channelFull(channel, refusalOf(error));
    if (!isOutcomeUnknown(error)) throw error;
    try {
      reply = await runScript(db.redis, PUBLISH_LUA, scriptKeys, args("recover"));
    } catch (again) {
      // Whatever stopped the recovery (Redis unavailable, refused, out of memory), the first
      // run may have stored the messages: never answer "nothing was written" here.
      throw new PublishOutcomeUnknown(again);
    }
  }
  const [status, ids, woken, timerAt, read, trimValue] = asArray(reply);
  switch (asNumber(status)) {
    case 1:
      return { duplicate: true, ids: asString(ids).split(",") };
    case 3:
      throw channelFull(channel, asString(ids));
    case 4:
      throw new DelayPastRetention(channel, asNumber(ids));
    default: {
      const timer = asOptionalString(timerAt) ?? "";
      const kept = keepRoster(copies, db, channel, roster, read, trimValue, options.now);
      return {
        duplicate: false,
        ids: asArray(ids).map(asString),
        // With a copy the script answers no settings: the copy has them.
        woken: parseWoken(woken).map((w) => ({
          ...w,
          json: w.json || (kept.active.get(w.name) ?? ""),
        })),
        timerAt: timer === "" ? null : asNumber(timer),
      };
    }
  }
}

/** lua/publish.ts's roster arguments (ARGV[22..]): a copy, or "" to read the hash. */
function rosterArgs(roster: Roster | null): string[] {
  if (!roster) return ["", "", "", "", "0"];
  const names = [...roster.active.keys()];
  return [
    "1",
    roster.trim ?? "",
    roster.retention ?? "",
    roster.subscribed ? "1" : "",
    String(names.length),
    ...names,
  ];
}

/**
 * The copy after a publish: what its script read (a new copy, dated `now`), or the copy it used
 * with the trim clock the script wrote or read.
 */
function keepRoster(
  copies: Rosters,
  db: Db,
  channel: string,
  used: Roster | null,
  read: unknown,
  trimValue: unknown,
  now: number,
): Roster {
  const trim = asOptionalString(trimValue) ?? "";
  if (used) {
    if (trim !== "") used.trim = trim;
    return used;
  }
  // No hash read (a publish of delayed messages only): nothing learnt, nothing kept.
  const known = read !== null && read !== undefined;
  const roster = rosterOf(known ? asArray(read).map(asString) : [], now);
  if (trim !== "") roster.trim = trim;
  if (known) copies.set(db, channel, roster);
  return roster;
}

/** A delay longer than the channel keeps messages (its retention's maxAgeMs): nothing written. */
export class DelayPastRetention extends InvalidInput {
  constructor(channel: string, maxAgeMs: number) {
    super(
      `a message may wait at most as long as channel "${channel}" keeps messages ` +
        `(its retention's maxAgeMs, ${maxAgeMs} ms); nothing was published`,
      "delay_past_retention",
    );
  }
}

/** Redis stopped answering after the publish was sent: it may or may not have been stored. */
export class PublishOutcomeUnknown extends AppError {
  constructor(cause: unknown) {
    super(
      "redis_unavailable",
      503,
      "Redis stopped answering while the messages were being stored, so they may or may not " +
        "have been; repeat the request with the same Idempotency-Key to be sure of one copy",
    );
    this.cause = cause;
  }
}

/** 16 random lowercase hex characters: a publish request's nonce. */
function randomToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The woken list of the publish (and enter) scripts' replies: name, JSON, retry score, ... */
export function parseWoken(value: unknown): WokenSubscriber[] {
  const flat = asArray(value);
  const out: WokenSubscriber[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    const retry = asString(flat[i + 2]);
    out.push({
      name: asString(flat[i]),
      json: asString(flat[i + 1]),
      retryAt: retry === "" ? null : asNumber(retry),
    });
  }
  return out;
}

/** The ms timestamp inside a stream id ("<ms>-<seq>"). */
export function idTime(id: string): number {
  const dash = id.indexOf("-");
  return Number(dash === -1 ? id : id.slice(0, dash));
}

/**
 * Stream ids in order ("<ms>-<seq>", both parts up to 2^64). Compared as decimal texts, without
 * BigInt: a deliverer compares every entry it takes (its cursor), and parsing four BigInts each
 * time cost about 1.4 us per entry (Node, 200,000 ids: 279 ms; this way 30-70 ms).
 */
export function compareIds(a: string, b: string): number {
  const ad = a.indexOf("-");
  const bd = b.indexOf("-");
  return (
    compareDecimals(a.slice(0, ad), b.slice(0, bd)) ||
    compareDecimals(a.slice(ad + 1), b.slice(bd + 1))
  );
}

/** Two decimal numbers' texts in order: leading zeros dropped, the longer is larger, else text order. */
function compareDecimals(a: string, b: string): number {
  const x = withoutLeadingZeros(a);
  const y = withoutLeadingZeros(b);
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

function withoutLeadingZeros(digits: string): string {
  let i = 0;
  while (i < digits.length - 1 && digits.charCodeAt(i) === 48) i++;
  return i === 0 ? digits : digits.slice(i);
}

/** A channel's entry as a message; `seed` is the channel's traceSeed (for a derived trace). */
export function toStoredMessage(entry: StreamEntry, seed: string): StoredMessage {
  return {
    id: entry.id,
    type: entry.fields?.t ?? null,
    data: entry.fields?.d ?? "null",
    publishedAt: new Date(idTime(entry.id)).toISOString(),
    ...storedTrace(seed, entry.id, entry.fields?.p, entry.fields?.s),
    ...(entry.fields?.m ? { delayedId: entry.fields.m } : {}),
    ...(entry.fields?.k ? { orderingKey: entry.fields.k } : {}),
  };
}

const MAX_STREAM_ID = "18446744073709551615-18446744073709551615";

/** The most data one page of history (or of dead letters) reads, whatever its `limit`. */
export const PAGE_BYTES = 8 * 1024 * 1024;

/**
 * A page of the channel's history after `after` (exclusive; from the start when absent), oldest
 * first. `next` is the id to pass as `after` for the following page, null on the last page.
 * Returns null when the channel does not exist. Bounded in bytes as well as by `limit`: it reads
 * `maxMessageBytes`-sized slices and stops at PAGE_BYTES, so a page of large messages is shorter
 * (with a `next`) instead of filling a Worker's 128 MB.
 */
export async function readHistory(
  db: Db,
  channel: string,
  page: { after?: string | undefined; limit: number },
  maxMessageBytes: number,
): Promise<{ messages: StoredMessage[]; next: string | null } | null> {
  const stream = db.keys.channel(channel);
  const { entries, more } = await readPage(db, stream, page, maxMessageBytes);
  if (entries === null) return null;
  const seed = traceSeed(channel);
  const messages = entries.map((entry) => toStoredMessage(entry, seed));
  return { messages, next: more ? (messages.at(-1)?.id ?? null) : null };
}

/**
 * Up to `limit` entries of a stream after `after`, in slices whose worst case keeps the whole
 * page under PAGE_BYTES; `more` when entries may be left. Null entries when the stream does not
 * exist. 2 commands (EXISTS, XRANGE) per slice; one slice unless messages are large.
 */
export async function readPage(
  db: Db,
  stream: string,
  page: { after?: string | undefined; limit: number },
  maxMessageBytes: number,
): Promise<{ entries: StreamEntry[] | null; more: boolean }> {
  const out: StreamEntry[] = [];
  // Nothing comes after the largest id Redis can write (and it refuses to range past it).
  if (page.after === MAX_STREAM_ID)
    return { entries: (await db.redis.exists(stream)) ? [] : null, more: false };
  let start = page.after ? `(${page.after}` : "-";
  let bytes = 0;
  for (;;) {
    // As many as fit in what is left of PAGE_BYTES if every one were as large as allowed.
    const room = Math.floor((PAGE_BYTES - bytes) / Math.max(1, maxMessageBytes));
    const want = Math.min(Math.max(room, out.length === 0 ? 1 : 0), page.limit - out.length);
    if (want <= 0) return { entries: out, more: true };
    // One extra entry tells whether more exist, without a further read.
    const [exists, raw] = await db.redis
      .pipeline()
      .exists(stream)
      .xrange(stream, start, "+", want + 1)
      .exec<[unknown, unknown]>();
    if (out.length === 0 && asNumber(exists) === 0) return { entries: null, more: false };
    const entries = asEntries(raw);
    for (const entry of entries.slice(0, want)) {
      out.push(entry);
      bytes += entryBytes(entry);
    }
    if (entries.length <= want || out.length >= page.limit) {
      return { entries: out, more: entries.length > want };
    }
    start = `(${out.at(-1)!.id}`;
  }
}

/** About how many bytes an entry's fields hold (JS string lengths: UTF-16 units). */
export function entryBytes(entry: StreamEntry): number {
  let bytes = entry.id.length;
  for (const [field, value] of Object.entries(entry.fields ?? {}))
    bytes += field.length + value.length;
  return bytes;
}

export async function channelExists(db: Db, channel: string): Promise<boolean> {
  return asNumber(await db.redis.exists(db.keys.channel(channel))) === 1;
}

export interface ChannelSummary {
  name: string;
  length: number;
  subscriptions: number;
  lastId: string | null;
  /** Redis' estimate of the stream's size (storage.ts). */
  sizeBytes: number;
}

/** A channel's retention: null means no limit of that kind. */
export interface Retention {
  maxAgeMs: number | null;
  maxMessages: number | null;
}

export interface ChannelInfo extends ChannelSummary {
  /** What the channel keeps (its own, or the defaults when `retentionIsDefault`). */
  retention: Retention;
  retentionIsDefault: boolean;
  firstId: string | null;
  firstPublishedAt: string | null;
  lastPublishedAt: string | null;
}

/**
 * Every registered channel `visible` lets through (all by default; a key sees those its channel
 * patterns match), with its length, subscription count, last id and size: 1 SMEMBERS,
 * then 2 round trips side by side (3 commands per channel; the sizes, see storage.ts).
 */
export async function listChannels(
  db: Db,
  visible: (channel: string) => boolean = () => true,
): Promise<ChannelSummary[]> {
  // Filtered before the pipeline: a key limited to a few channels costs what those cost.
  const names = asArray(await db.redis.smembers(db.keys.channels()))
    .map(asString)
    .filter(visible)
    .sort();
  if (names.length === 0) return [];
  const pipeline = db.redis.pipeline();
  for (const name of names) queueSummary(db, pipeline, name);
  const [replies, sizes] = await Promise.all([pipeline.exec<unknown[]>(), streamBytes(db, names)]);
  return names.map((name, i) => readSummary(name, replies.slice(i * 3, i * 3 + 3), sizes[i] ?? 0));
}

/** One channel's details, or null when there is no such channel. */
export async function channelInfo(
  db: Db,
  name: string,
  defaults: Retention,
): Promise<ChannelInfo | null> {
  const stream = db.keys.channel(name);
  const pipeline = db.redis.pipeline();
  queueSummary(db, pipeline, name);
  pipeline.xrange(stream, "-", "+", 1).exists(stream);
  pipeline.hget(db.keys.subscriptions(name), retentionField);
  const [replies, [sizeBytes]] = await Promise.all([
    pipeline.exec<unknown[]>(),
    streamBytes(db, [name]),
  ]);
  if (asNumber(replies[4]) === 0) return null;
  const summary = readSummary(name, replies, sizeBytes ?? 0);
  const own = parseRetention(replies[5]);
  const firstId = asEntries(replies[3])[0]?.id ?? null;
  const time = (id: string | null) => (id ? new Date(idTime(id)).toISOString() : null);
  return {
    ...summary,
    retention: own ?? { maxAgeMs: defaults.maxAgeMs, maxMessages: defaults.maxMessages },
    retentionIsDefault: own === null,
    firstId,
    firstPublishedAt: time(firstId),
    lastPublishedAt: time(summary.lastId),
  };
}

/**
 * Each channel's retention as channelInfo shows it (its own, or the defaults), in the channels'
 * order: 1 HGET per channel, in one pipeline. For lists that show retention beside listChannels.
 */
export async function channelRetentions(
  db: Db,
  names: string[],
  defaults: Retention,
): Promise<{ retention: Retention; retentionIsDefault: boolean }[]> {
  if (names.length === 0) return [];
  const pipeline = db.redis.pipeline();
  for (const name of names) pipeline.hget(db.keys.subscriptions(name), retentionField);
  const replies = await pipeline.exec<unknown[]>();
  return replies.map((reply) => {
    const own = parseRetention(reply);
    return {
      retention: own ?? { maxAgeMs: defaults.maxAgeMs, maxMessages: defaults.maxMessages },
      retentionIsDefault: own === null,
    };
  });
}

type Pipeline = ReturnType<Db["redis"]["pipeline"]>;

// 3 commands per channel: XLEN, the last entry, the subscription names.
function queueSummary(db: Db, pipeline: Pipeline, name: string): void {
  const stream = db.keys.channel(name);
  pipeline.xlen(stream).xrevrange(stream, "+", "-", 1).hkeys(db.keys.subscriptions(name));
}

function readSummary(name: string, replies: unknown[], sizeBytes: number): ChannelSummary {
  const [length, last, fields] = replies;
  return {
    name,
    length: asNumber(length),
    subscriptions: asArray(fields).filter((f) => isSubscriptionField(asString(f))).length,
    lastId: asEntries(last)[0]?.id ?? null,
    sizeBytes,
  };
}

// A channel's own retention, in {p}:subs:<ch> field ~retention as "<maxAgeMs>,<maxMessages>",
// "-" for no limit: the publish script reads it with string.match (lua/publish.ts).
const serializeRetention = (r: Retention) => `${r.maxAgeMs ?? "-"},${r.maxMessages ?? "-"}`;

function parseRetention(value: unknown): Retention | null {
  if (value === null || value === undefined) return null;
  const [age, count] = asString(value).split(",");
  const limit = (v: string | undefined) => (v === undefined || v === "-" ? null : Number(v));
  return { maxAgeMs: limit(age), maxMessages: limit(count) };
}

/**
 * Sets a channel's retention (fields left out keep their current value; an empty change writes
 * nothing). False when there is no such channel. The next trim applies it: the channel's sweep,
 * due from `now` (the next cron), or a publish that finds its trim due, whichever comes first.
 * One script (lua/retention.ts): the channel's existence and the write in one step.
 */
export async function setRetention(
  db: Db,
  channel: string,
  change: Partial<Retention>,
  defaults: Retention,
  now: number,
): Promise<boolean> {
  const limit = (value: number | null | undefined) =>
    value === undefined ? "" : value === null ? "-" : String(value);
  const written = await runScript(
    db.redis,
    RETENTION_LUA,
    [db.keys.channel(channel), db.keys.subscriptions(channel), db.keys.due()],
    [
      retentionField,
      serializeRetention(defaults),
      limit(change.maxAgeMs),
      limit(change.maxMessages),
      sweepMember(channel),
      String(now),
    ],
  );
  rosters.forget(db, channel);
  return asNumber(written) === 1;
}
