// Upstash's limits, which the bridge enforces so that a path that only works on a Redis that never
// refuses anything fails in tests as it would in production. Texts are Upstash's own (its
// troubleshooting docs), so code that reads them (shared/redis.ts) is tested against the real
// words:
//
//   request size   a body over maxRequestBytes (10 MiB): 400, nothing runs     (checked in bridge.ts)
//   record size    a write that would grow one key past maxRecordBytes (100 MiB)
//   pending        XREADGROUP ... > when the consumer's pending entries + COUNT would pass 1000
//   capacity       only with maxDataBytes: Redis' maxmemory; its OOM replies become Upstash's text
//
// The bridge cannot ask Redis "would this fit?" atomically with the write, so a checked command is
// preceded by a probe, a read the bridge sends right before it (MEMORY USAGE key, XINFO CONSUMERS
// key group), and refused when the probe's reply says so. Probes are the bridge's, not billed by
// Upstash: test/helpers/redis-server.ts' countCommands leaves them out. The same rules run inside
// Lua scripts, rewritten by bridge-scripts.ts.

import type { Outcome } from "./bridge-redis.ts";
import type { Arg, Command } from "./bridge-request.ts";

export interface Limits {
  /** Bytes one key may hold (MEMORY USAGE + what a write adds). Upstash: 100 MiB. */
  maxRecordBytes: number;
  /** Pending entries one consumer may hold after an XREADGROUP. Upstash: 1000. */
  maxPendingPerConsumer: number;
}

const MiB = 1024 * 1024;
export const UPSTASH_LIMITS = {
  maxRequestBytes: 10 * MiB,
  maxRecordBytes: 100 * MiB,
  maxPendingPerConsumer: 1000,
} as const;

export const REQUEST_TOO_BIG = "ERR max request size exceeded";
export const RECORD_TOO_BIG = "ERR max single record size exceeded";
export const CAPACITY_EXCEEDED = "ERR DB capacity quota exceeded";

// The writes that add data to a key, and where their key is. "key": the first argument is the key
// and every later one counts as added bytes (options and ids included: an upper bound, a few bytes
// over). "pairs": key value key value... (MSET), each key checked with its value. Everything else
// is never refused for size: reads, deletes and trims (XACK, XDEL, XTRIM, DEL, HDEL, ZREM, SREM...),
// group reads and claims (XREADGROUP, XCLAIM, XAUTOCLAIM, which move ids, not data), counters
// (INCR...: a few bytes at most) and copies between keys (COPY, LMOVE, SMOVE, *STORE).
export const RECORD_WRITES: Readonly<Record<string, "key" | "pairs">> = {
  append: "key",
  set: "key",
  setnx: "key",
  setex: "key",
  psetex: "key",
  getset: "key",
  setrange: "key",
  mset: "pairs",
  msetnx: "pairs",
  hset: "key",
  hsetnx: "key",
  hmset: "key",
  hincrby: "key",
  hincrbyfloat: "key",
  lpush: "key",
  rpush: "key",
  lpushx: "key",
  rpushx: "key",
  linsert: "key",
  lset: "key",
  sadd: "key",
  zadd: "key",
  zincrby: "key",
  xadd: "key",
  geoadd: "key",
  pfadd: "key",
};

/** A read the bridge sends right before a checked command, and what its reply is checked for. */
export type Probe =
  | { kind: "record"; command: Command; key: Arg; adds: number }
  | {
      kind: "pending";
      command: Command;
      key: Arg;
      group: Arg;
      consumer: Arg;
      requested: number;
    };

/** The probes `command` needs before it runs; none for a command that is never refused. */
export function probesFor(command: Command): Probe[] {
  const name = command.name.toLowerCase();
  const layout = RECORD_WRITES[name];
  if (layout) return recordProbes(command.args, layout);
  if (name === "xreadgroup") return pendingProbes(command.args);
  return [];
}

function recordProbes(args: Arg[], layout: "key" | "pairs"): Probe[] {
  const probe = (key: Arg, data: Arg[]): Probe => ({
    kind: "record",
    command: { name: "MEMORY", args: ["USAGE", key] },
    key,
    adds: data.reduce((sum, arg) => sum + Buffer.byteLength(arg), 0),
  });
  const [key, ...data] = args;
  // Too few arguments: no probe, Redis answers its own arity error.
  if (key === undefined) return [];
  if (layout === "key") return [probe(key, data)];
  const probes: Probe[] = [];
  for (let i = 0; i + 1 < args.length; i += 2) probes.push(probe(args[i]!, [args[i + 1]!]));
  return probes;
}

/** XREADGROUP GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS k1 k2 id1 id2: one probe per `>`. */
function pendingProbes(args: Arg[]): Probe[] {
  const [groupWord, group, consumer] = args;
  if (word(groupWord) !== "group" || group === undefined || consumer === undefined) return [];
  let count: number | undefined;
  let i = 3;
  for (; i < args.length && word(args[i]) !== "streams"; i++) {
    const option = word(args[i]);
    if (option === "count") count = Number(args[++i]?.toString());
    else if (option === "block") i++;
    else if (option !== "noack") return []; // malformed: Redis says what is wrong
  }
  const streams = args.slice(i + 1);
  if (streams.length === 0 || streams.length % 2 !== 0) return [];
  const keys = streams.slice(0, streams.length / 2);
  const ids = streams.slice(streams.length / 2);
  // Without COUNT a read delivers at least one entry: refused once the consumer is at the limit.
  // (Upstash does not document this case; a read without COUNT may still pass the limit.)
  const requested = count !== undefined && Number.isInteger(count) && count > 0 ? count : 1;
  return keys.flatMap((key, n): Probe[] =>
    ids[n]?.toString() === ">"
      ? [
          {
            kind: "pending",
            command: { name: "XINFO", args: ["CONSUMERS", key, group] },
            key,
            group,
            consumer,
            requested,
          },
        ]
      : [],
  );
}

/**
 * Upstash's error for the command `probe` guards, or undefined when it may run. `earlier` is what
 * commands of the same transaction already add to the probe's key (or consumer), which the probe,
 * sent before MULTI, cannot see.
 */
export function refusal(
  probe: Probe,
  outcome: Outcome,
  limits: Limits,
  earlier = 0,
): string | undefined {
  // A probe that fails (XINFO on a missing key or group) checks nothing: the command runs and
  // Redis answers its own error.
  if ("error" in outcome) return undefined;
  if (probe.kind === "record") {
    const used = typeof outcome.result === "number" ? outcome.result : 0; // nil: no such key
    return used + earlier + probe.adds > limits.maxRecordBytes ? RECORD_TOO_BIG : undefined;
  }
  const pending = consumerPending(outcome.result, probe.consumer) + earlier;
  if (pending + probe.requested <= limits.maxPendingPerConsumer) return undefined;
  return pendingRefusal({ ...probe, limit: limits.maxPendingPerConsumer, pending });
}

export function pendingRefusal(read: {
  limit: number;
  pending: number;
  requested: number;
  key: Arg;
  group: Arg;
  consumer: Arg;
}): string {
  return (
    "ERR XReadGroup is cancelled. Pending Entries List limit per consumer is about to be reached." +
    ` Limit: ${read.limit}, Current PEL size: ${read.pending}, Requested Read: ${read.requested},` +
    ` Key: ${read.key}, Group: ${read.group}, Consumer: ${read.consumer}.`
  );
}

/** The consumer's pending count in an XINFO CONSUMERS reply (RESP2: flat field/value arrays). */
function consumerPending(reply: unknown, consumer: Arg): number {
  const name = Buffer.from(consumer);
  for (const fields of Array.isArray(reply) ? reply : []) {
    if (!Array.isArray(fields)) continue;
    const info = new Map<string, unknown>();
    for (let i = 0; i + 1 < fields.length; i += 2) info.set(String(fields[i]), fields[i + 1]);
    const own = info.get("name");
    if (Buffer.isBuffer(own) && own.equals(name)) return Number(info.get("pending")) || 0;
  }
  return 0; // not a consumer yet: XREADGROUP creates it
}

/** Redis' out-of-memory replies, as Upstash words a database over its capacity. */
export function asUpstashError(message: string): string {
  return /\bOOM command not allowed\b/.test(message) ? CAPACITY_EXCEEDED : message;
}

function word(arg: Arg | undefined): string {
  return arg === undefined ? "" : arg.toString().toLowerCase();
}
