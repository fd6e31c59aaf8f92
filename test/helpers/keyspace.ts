// What a rejected request must leave alone: the whole keyspace, as a digest per key.

import { createHash } from "node:crypto";
import type Redis from "ioredis";

/** key -> sha1 of its DUMP (type, value, a stream's groups and pending lists) and whether it expires. */
export type Keyspace = Map<string, string>;

/** Every key but the `ignored` ones, with a digest of its content (SCAN + DUMP + PTTL per key). */
export async function keyspace(redis: Redis, ignored: (key: string) => boolean = () => false) {
  const digests: Keyspace = new Map();
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    for (const key of keys) {
      if (ignored(key)) continue;
      const [dump, pttl] = await Promise.all([redis.dumpBuffer(key), redis.pttl(key)]);
      if (dump === null) continue; // gone between SCAN and DUMP
      const digest = createHash("sha1").update(dump).digest("hex");
      digests.set(key, `${digest}${pttl >= 0 ? " (expires)" : ""}`);
    }
  } while (cursor !== "0");
  return digests;
}

/**
 * Waits until what an accepted request set going in the background (a delivery it woke, in
 * waitUntil) is over: nobody holds a lease and two snapshots 50 ms apart agree. Returns the last.
 */
export async function quiet(
  redis: Redis,
  ignored: (key: string) => boolean,
  isLease: (key: string) => boolean,
  timeoutMs = 5000,
): Promise<Keyspace> {
  const deadline = Date.now() + timeoutMs;
  let last = await keyspace(redis, ignored);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = await keyspace(redis, ignored);
    const leased = [...now.keys()].some(isLease);
    if (!leased && sameKeyspace(last, now)) return now;
    if (Date.now() > deadline) throw new Error("the keyspace kept changing");
    last = now;
  }
}

function sameKeyspace(a: Keyspace, b: Keyspace): boolean {
  return a.size === b.size && [...a].every(([key, digest]) => b.get(key) === digest);
}
