// Channels and their messages: publish, history, channel info and the channel registry.
//
// A channel is one Redis stream ({p}:ch:<ch>). An entry holds `t` (the message type, absent when
// the publisher gave none) and `d` (the data as the JSON text the publisher sent, re-serialised
// once at publish). The entry id is the publish time, so `publishedAt` is derived, not stored.

import { duePrefixes, PAUSED_SUFFIX } from "./keys.ts";
import { PUBLISH_LUA } from "./lua/publish.ts";
import {
  asArray,
  asEntries,
  asNumber,
  asString,
  type Db,
  runScript,
  type StreamEntry,
} from "./redis.ts";

export interface NewMessage {
  type?: string | undefined;
  /** The message data as JSON text. */
  data: string;
}

export interface StoredMessage {
  id: string;
  type: string | null;
  /** The message data as the JSON text it was published with. */
  data: string;
  publishedAt: string;
}

/** A subscriber a publish woke: nobody was delivering to it, so the caller should kick it. */
export interface WokenSubscriber {
  name: string;
  /** The subscription as stored (JSON), so the kick needs no further read. */
  json: string;
  /** When its earliest failed message is due again, or null when nothing is pending. */
  retryAt: number | null;
}

export type PublishResult =
  | { duplicate: false; ids: string[]; woken: WokenSubscriber[] }
  | { duplicate: true; ids: string[] };

const IDEMPOTENCY_TTL_SECONDS = 24 * 60 * 60;

/** Appends messages in order in one round trip; see lua/publish.ts for the cost. */
export async function publish(
  db: Db,
  channel: string,
  messages: NewMessage[],
  options: { idempotencyKey?: string | undefined; now: number },
): Promise<PublishResult> {
  const { keys } = db;
  const scriptKeys = [
    keys.channel(channel),
    keys.channels(),
    keys.subscriptions(channel),
    keys.due(),
  ];
  if (options.idempotencyKey) scriptKeys.push(keys.idempotency(channel, options.idempotencyKey));
  const prefixes = duePrefixes(channel);
  const args = [
    channel,
    String(options.now),
    prefixes.wake,
    prefixes.retry,
    PAUSED_SUFFIX,
    String(IDEMPOTENCY_TTL_SECONDS),
  ];
  for (const message of messages) args.push(message.type ?? "", message.data);

  const [duplicate, ids, woken] = asArray(await runScript(db, PUBLISH_LUA, scriptKeys, args));
  if (asNumber(duplicate) === 1) return { duplicate: true, ids: asString(ids).split(",") };
  return { duplicate: false, ids: asArray(ids).map(asString), woken: parseWoken(woken) };
}

function parseWoken(value: unknown): WokenSubscriber[] {
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

export function toStoredMessage(entry: StreamEntry): StoredMessage {
  return {
    id: entry.id,
    type: entry.fields.t ?? null,
    data: entry.fields.d ?? "null",
    publishedAt: new Date(idTime(entry.id)).toISOString(),
  };
}

/**
 * A page of the channel's history after `after` (exclusive; from the start when absent), oldest
 * first. `next` is the id to pass as `after` for the following page, null on the last page.
 * Returns null when the channel does not exist.
 */
export async function readHistory(
  db: Db,
  channel: string,
  page: { after?: string | undefined; limit: number },
): Promise<{ messages: StoredMessage[]; next: string | null } | null> {
  const stream = db.keys.channel(channel);
  const start = page.after ? `(${page.after}` : "-";
  // One extra entry tells whether a next page exists, without a second read.
  const [exists, raw] = await db.redis
    .pipeline()
    .exists(stream)
    .xrange(stream, start, "+", page.limit + 1)
    .exec<[unknown, unknown]>();
  if (asNumber(exists) === 0) return null;
  const entries = asEntries(raw);
  const more = entries.length > page.limit;
  const messages = entries.slice(0, page.limit).map(toStoredMessage);
  return { messages, next: more ? (messages.at(-1)?.id ?? null) : null };
}

export async function channelExists(db: Db, channel: string): Promise<boolean> {
  return asNumber(await db.redis.exists(db.keys.channel(channel))) === 1;
}

export interface ChannelSummary {
  name: string;
  length: number;
  subscriptions: number;
  lastId: string | null;
}

export interface ChannelInfo extends ChannelSummary {
  firstId: string | null;
  firstPublishedAt: string | null;
  lastPublishedAt: string | null;
}

/** Every registered channel with its length, subscription count and last id. */
export async function listChannels(db: Db): Promise<ChannelSummary[]> {
  const names = asArray(await db.redis.smembers(db.keys.channels()))
    .map(asString)
    .sort();
  if (names.length === 0) return [];
  const pipeline = db.redis.pipeline();
  for (const name of names) queueSummary(db, pipeline, name);
  const replies = await pipeline.exec<unknown[]>();
  return names.map((name, i) => readSummary(name, replies.slice(i * 3, i * 3 + 3)));
}

/** One channel's details, or null when there is no such channel. */
export async function channelInfo(db: Db, name: string): Promise<ChannelInfo | null> {
  const stream = db.keys.channel(name);
  const pipeline = db.redis.pipeline();
  queueSummary(db, pipeline, name);
  pipeline.xrange(stream, "-", "+", 1).exists(stream);
  const replies = await pipeline.exec<unknown[]>();
  if (asNumber(replies[4]) === 0) return null;
  const summary = readSummary(name, replies);
  const firstId = asEntries(replies[3])[0]?.id ?? null;
  const time = (id: string | null) => (id ? new Date(idTime(id)).toISOString() : null);
  return {
    ...summary,
    firstId,
    firstPublishedAt: time(firstId),
    lastPublishedAt: time(summary.lastId),
  };
}

type Pipeline = ReturnType<Db["redis"]["pipeline"]>;

// 3 commands per channel: XLEN, the last entry, the subscription names.
function queueSummary(db: Db, pipeline: Pipeline, name: string): void {
  const stream = db.keys.channel(name);
  pipeline.xlen(stream).xrevrange(stream, "+", "-", 1).hkeys(db.keys.subscriptions(name));
}

function readSummary(name: string, replies: unknown[]): ChannelSummary {
  const [length, last, fields] = replies;
  return {
    name,
    length: asNumber(length),
    subscriptions: asArray(fields).filter((f) => !asString(f).endsWith(PAUSED_SUFFIX)).length,
    lastId: asEntries(last)[0]?.id ?? null,
  };
}
