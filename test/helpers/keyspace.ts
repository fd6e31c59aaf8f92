// What a rejected request must leave alone: the whole keyspace, as a digest per key.

import { createHash } from "node:crypto";
import type Redis from "ioredis";

/** key -> its type and a sha1 of its content, and whether it expires. */
export type Keyspace = Map<string, string>;

/**
 * Every key but the `ignored` ones, with a digest of its content (SCAN, then two pipelines). A
 * hash or set is read, not DUMPed: DUMP writes a large one in its hash table's order, which a
 * read (HGET, HEXISTS) can change by taking a step of incremental rehashing. A stream is DUMPed,
 * so its consumer groups and pending lists count too.
 */
export async function keyspace(redis: Redis, ignored: (key: string) => boolean = () => false) {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "COUNT", 1000);
    cursor = next;
    keys.push(...found.filter((key) => !ignored(key)));
  } while (cursor !== "0");
  keys.sort();
  const typed = redis.pipeline();
  for (const key of keys) typed.type(key);
  const types = ((await typed.exec()) ?? []).map(([, type]) => type as string);
  const read = redis.pipeline();
  keys.forEach((key, i) => {
    const type = types[i];
    if (type === "string") read.get(key);
    else if (type === "hash") read.hgetall(key);
    else if (type === "set") read.smembers(key);
    else if (type === "zset") read.zrange(key, "0", "-1", "WITHSCORES");
    else if (type === "list") read.lrange(key, 0, -1);
    else read.dumpBuffer(key);
    read.pttl(key);
  });
  const replies = (await read.exec()) ?? [];
  const digests: Keyspace = new Map();
  keys.forEach((key, i) => {
    const content = replies[2 * i]?.[1];
    const pttl = replies[2 * i + 1]?.[1] as number;
    if (types[i] === "none" || content === null) return; // gone since SCAN
    const hash = createHash("sha1").update(canonical(types[i]!, content)).digest("hex");
    digests.set(key, `${types[i]} ${hash}${pttl >= 0 ? " (expires)" : ""}`);
  });
  return digests;
}

// The same content, the same bytes: a hash's fields and a set's members in sorted order.
function canonical(type: string, content: unknown): string | Buffer {
  if (Buffer.isBuffer(content) || typeof content === "string") return content;
  if (type === "set") return JSON.stringify((content as string[]).sort());
  if (Array.isArray(content)) return JSON.stringify(content);
  return JSON.stringify(Object.entries(content as Record<string, string>).sort());
}

/**
 * Waits until what an accepted request set going in the background (a delivery it woke, in
 * waitUntil) is over: `busy` (someone is delivering: schedule.ts anyDeliverer) no longer holds
 * and two snapshots 50 ms apart agree. Returns the last.
 */
export async function quiet(
  redis: Redis,
  ignored: (key: string) => boolean,
  busy: () => Promise<boolean>,
  timeoutMs = 5000,
): Promise<Keyspace> {
  const deadline = Date.now() + timeoutMs;
  let last = await keyspace(redis, ignored);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    const now = await keyspace(redis, ignored);
    if (!(await busy()) && sameKeyspace(last, now)) return now;
    if (Date.now() > deadline) throw new Error("the keyspace kept changing");
    last = now;
  }
}

function sameKeyspace(a: Keyspace, b: Keyspace): boolean {
  return a.size === b.size && [...a].every(([key, digest]) => b.get(key) === digest);
}

/** The keys added, removed or changed between two snapshots, sorted. */
export function changedKeys(before: Keyspace, after: Keyspace): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}
