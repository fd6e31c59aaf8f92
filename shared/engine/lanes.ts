// An ordered subscription's lanes, as the API shows them: the keys held back by a failed message.
// lua/take.ts alone writes them ({p}:lanes:<ch>:<sub>, see keys.ts): a field "=<key>" ("=" for
// messages without a key) holds "<since ms> <head id> <parked ids...>", since 0 while its head
// has not failed.

import { asFields, type Db } from "../redis.ts";
import type { Subscription } from "../subscription.ts";

/** A key whose messages wait behind a failed one. */
export interface HeldKey {
  /** null: the lane of the messages published without a key. */
  orderingKey: string | null;
  /** The failed message they wait behind (its entry id). */
  messageId: string;
  /** When it first failed (ISO 8601). */
  since: string;
  /** The key's later messages waiting behind it. */
  waiting: number;
}

/** The held keys of an ordered subscription, longest held first (1 HGETALL); none otherwise. */
export async function heldKeys(db: Db, sub: Subscription): Promise<HeldKey[]> {
  if (!sub.ordered) return [];
  return readHeld(asFields(await db.redis.hgetall(db.keys.lanes(sub.channel, sub.name))));
}

/** The held lanes of a lanes hash's fields (pure). */
export function readHeld(fields: Record<string, string>): HeldKey[] {
  const held: HeldKey[] = [];
  for (const [field, value] of Object.entries(fields)) {
    if (!field.startsWith("=")) continue;
    const [since = "0", head = "", ...queue] = value.split(" ");
    if (Number(since) <= 0) continue;
    held.push({
      orderingKey: field === "=" ? null : field.slice(1),
      messageId: head,
      since: new Date(Number(since)).toISOString(),
      waiting: queue.length,
    });
  }
  return held.sort((a, b) => a.since.localeCompare(b.since));
}
