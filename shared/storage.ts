// Storage you can see: how much a channel holds, and whether the database still takes writes.
//
// Sizes are Redis' own estimate of each stream key (lua/memory-usage.ts: MEMORY USAGE, sampled, so
// its cost does not grow with the stream). They are what Upstash counts against its limits: one
// key's record size (100 MB on the Free and Pay-as-you-go plans) and the database's capacity (the
// plan's max data size).
//
// Full. Upstash says a database is full only by refusing a write ("ERR DB capacity quota
// exceeded"; reads and deletes still work), and it has no cheap "how full?" question. So GET
// /health writes: a SET of a few bytes to {p}:health, whose refusal means the database is full.
// That is 1 command, as the PING it replaced, and it also proves the database takes writes.

import { StorageFull } from "./errors.ts";
import { MEMORY_USAGE_LUA } from "./lua/memory-usage.ts";
import { asArray, asNumber, type Db, isStorageFull, runScript } from "./redis.ts";

/** How long the health probe's key lives: it is gone soon after the last check. */
const HEALTH_TTL_MS = 60_000;

/**
 * Redis' estimate of each channel's stream, in bytes (0 for a channel without one), in the
 * channels' order. One round trip: 1 EVALSHA + 1 MEMORY USAGE per channel.
 */
export async function streamBytes(db: Db, channels: string[]): Promise<number[]> {
  if (channels.length === 0) return [];
  const keys = channels.map((channel) => db.keys.channel(channel));
  const reply = await runScript(db.redis, MEMORY_USAGE_LUA, keys, []);
  return asArray(reply).map(asNumber);
}

export interface StorageTotals {
  channels: number;
  messages: number;
  sizeBytes: number;
}

/** The sums over a list of channels. */
export function totals(channels: { length: number; sizeBytes: number }[]): StorageTotals {
  return {
    channels: channels.length,
    messages: channels.reduce((sum, c) => sum + c.length, 0),
    sizeBytes: channels.reduce((sum, c) => sum + c.sizeBytes, 0),
  };
}

/**
 * GET /health's probe: writes the time to {p}:health. Throws StorageFull when the database
 * refuses it for capacity, and whatever the client throws when Redis cannot be reached. Safe to
 * repeat (db.redis): the SET ends the same.
 */
export async function probeWrites(db: Db, now: number): Promise<void> {
  try {
    await db.redis.set(db.keys.health(), String(now), { px: HEALTH_TTL_MS });
  } catch (error) {
    if (isStorageFull(error)) throw databaseFull(refusalOf(error));
    throw error;
  }
}

/** The database refuses writes: said by /health. */
export function databaseFull(refusal: string): StorageFull {
  return new StorageFull(
    `the database is full: Redis refused a write of a few bytes at its capacity (${refusal}). ` +
      "Publishes are refused until data is deleted (DELETE /v1/channels/{channel}) or the " +
      "database's max data size is raised; reads and deletes still work",
  );
}

/**
 * A publish to `channel` that Redis refused, naming the limit it hit: the stream's record size
 * (one key's limit) or the database's capacity. Nothing of the publish was written.
 */
export function channelFull(channel: string, refusal: string): StorageFull {
  const limit = /max single record size/.test(refusal)
    ? `its stream is at the size limit of one Redis key (Upstash's max record size, 100 MB on ` +
      `the Free and Pay-as-you-go plans)`
    : `the database is at its capacity (the plan's max data size)`;
  return new StorageFull(
    `channel "${channel}" cannot take more: ${limit}; Redis said "${refusal}". Nothing was ` +
      `written; delete data (DELETE /v1/channels/{channel}) or raise the limit`,
  );
}

/** Redis' words in a refusal, without the client's "Command failed: " and echo of the command. */
export function refusalOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/^Command failed: /, "").replace(/, command was: .*$/s, "");
}
