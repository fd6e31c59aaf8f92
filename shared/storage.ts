// Storage you can see: how much a channel holds.
//
// Sizes are Redis' own estimate of each stream key (lua/memory-usage.ts: MEMORY USAGE, sampled, so
// its cost does not grow with the stream). They are what Upstash counts against its limits: one
// key's record size (100 MB on the Free and Pay-as-you-go plans) and the database's capacity (the
// plan's max data size).

import { MEMORY_USAGE_LUA } from "./lua/memory-usage.ts";
import { asArray, asNumber, type Db, runScript } from "./redis.ts";

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
