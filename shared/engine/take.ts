// take: a reader's one round trip with its group, settling and taking (lua/take.ts does it, in one
// atomic step; its header has each step and its cost). Pull and push call it with their policy:
//
//   pull    a consumer named by the puller; nacks stay with it; no cap, no schedule, no pace;
//           a lost reply is repeated (db.redis) and what the lost run took comes back after its
//           visibility timeout, attempt counted
//   push    a reader per deliverer run (newReader), nacks to the waiting room, the subscription's
//           window of requests in flight as a cap (adaptive, up to maxConcurrency), the group
//           pending limit, its {p}:due members kept, its pace, its flow key's share (the rate
//           and parallelism of every subscription naming the key);
//           a lost reply is recovered with `cursor` (worker/drive.ts)

import { stateField } from "../keys.ts";
import { TAKE_LUA } from "../lua/take.ts";
import { asArray, asNumber, asString, type Db, type Redis, replyOf, runScript } from "../redis.ts";
import { type TraceContext, traceSeed } from "../trace.ts";
import { LEASE_BASE_MS, PARKED, type Queue } from "./queue.ts";

/** A message taken from a queue, as its reader holds it. */
export interface Taken {
  /** Its entry id in the queue's stream: what ack and nack take. */
  entryId: string;
  /** The message's id as its JSON names it (a redriven message's original, for push). */
  messageId: string;
  /** 1 the first time it is handed out; counted on every redelivery. */
  attempt: number;
  /** Its JSON text (lua/encode.ts), as a webhook body or a pull answer carries it. */
  text: string;
  /** Bytes of its stored fields: what byte budgets count. */
  bytes: number;
  /** The publish's trace context, or the one derived from the message id (shared/trace.ts). */
  trace: TraceContext;
  /** The ordering key it was published with; null when none. */
  orderingKey: string | null;
}

/** Entries made visible again after `visibleInMs`; with `retryCount`, their attempts set to it. */
export interface Nack {
  ids: string[];
  visibleInMs: number;
  retryCount?: number;
}

export interface TakeRequest {
  reader: string;
  /** Who holds nacked entries: the waiting room (push and pull), or the reader itself. */
  holder?: string;
  now: number;
  /** At most this many taken (0: settle only). */
  count: number;
  /**
   * How long the readers' entries stay invisible, from their read (with a holder); a reader
   * named <name>~<ms> (pullReader) keeps its own.
   */
  visibilityMs: number;
  /** Bytes of message data the taken entries may hold (the first is taken whatever its size). */
  byteBudget: number;
  /**
   * Bytes to assume an entry takes before any is read: the read goes in slices that fit the
   * budget at the largest size seen so far. Absent: `count` at once.
   */
  sizeHint?: number;
  /** Claim entries whose visibility ran out before reading new ones. */
  look?: boolean;
  /** Looked-up entries with this many deliveries are reported dead instead (0: never). */
  maxAttempts?: number;
  /** Type patterns; entries matching none are acked, never taken. */
  types?: string[] | null;
  ack?: string[];
  nack?: Nack[];
  /** Messages carry their entry id and redrivenFrom (pull), not the original id (push). */
  ownIds?: boolean;
  /**
   * The taken come back as one text (TakeResult.joined), their JSON texts joined by commas, as a
   * pull answers them: one string in the reply instead of eight per message.
   */
  joined?: boolean;
  /** Recover a take whose reply was lost: the highest id this reader read before it. */
  cursor?: string;
  /** Requests the group may have in flight, counted `batchSize` entries each; `own` exactly. */
  cap?: { requests: number; batchSize: number; own: number };
  /**
   * The cap adapts: a window of requests in flight in the subscription's state hash, from `start`
   * up to the cap's requests (see lua/take.ts: window), moved by what the reader's requests met
   * since its last take.
   */
  window?: Signals & { start: number; known: Window | null };
  /** New entries are read only while the group holds fewer pending than this. */
  pendingLimit?: number;
  /** The retry member also covers what this take hands out, until its visibility runs out. */
  cover?: boolean;
  /**
   * A read that finds nothing while a reader holds entries (requests in flight, this one's or
   * another's) moves the due wake member this far ahead instead of removing it (ms).
   */
  busyWakeMs?: number;
  /** Reserve one start slot per batch taken, this far apart (ms). */
  paceIntervalMs?: number;
  /** A flow key's limits, counted over every reader under it (lua/take.ts: flow). */
  flow?: FlowTake;
  /** The reader is done: its schedule set exactly, its consumer deleted if it holds nothing. */
  end?: boolean;
  /**
   * An ordered subscription: its lanes key ({p}:lanes:<ch>:<sub>: one entry of each ordering key
   * handed out or waiting for its retry at a time, the key's later ones parked: lua/take.ts), and
   * the entries dead-lettered just before this take (their lanes move on once they are parked).
   */
  lanes?: { key: string; dead: string[] };
}

/** A take under a flow key: its requests (`cap.own` and the batches taken) count against it. */
export interface FlowTake {
  key: string;
  /** Requests in flight under the key at once (0: no bound). */
  parallelism: number;
  /** Ms between request starts under the key (0: no rate). */
  intervalMs: number;
  /** A rate slot further out than this is not reserved: the take waits instead (ms). */
  horizonMs: number;
  /** How long the reader's requests count when it never comes back (a killed run): ms. */
  leaseMs: number;
}

/**
 * What the read of new entries found: not tried, nothing, fewer than asked, as many as asked
 * (more may wait), or no room (the cap or the pending limit).
 */
export type ReadState = "none" | "empty" | "some" | "more" | "no-room";

export interface TakeResult {
  acked: number;
  nacked: number;
  /** Empty when the take was `joined`. */
  taken: Taken[];
  /** A `joined` take's messages: how many, and their JSON texts joined by commas; else null. */
  joined: Joined | null;
  /** Entries whose visibility ran out with maxAttempts deliveries made: park them. */
  dead: { entryId: string; deliveries: number }[];
  /** Entries the types filter left out (acked). */
  filtered: number;
  /** Bytes of the largest entry read, to size the next take. */
  largest: number;
  read: ReadState;
  /** Upstash refused the read (the reader holds too many): how many it holds. */
  refused: number | null;
  /** The first start slot reserved (paceIntervalMs), null when none. */
  paceAt: number | null;
  /**
   * Requests the cap leaves room for after this take; null without a cap. A reader alone under a
   * window: the room its `cap.requests` leaves (it may take ahead of the window).
   */
  room: number | null;
  /** An end: when the group's first pending entry becomes visible (null: none is pending). */
  nextAt: number | null;
  /** The first start slot reserved under the flow key's rate; null when none. */
  flowAt: number | null;
  /**
   * The flow key left no room for what was asked: nothing was taken, and an end did not end
   * (the reader stays). When a slot frees by itself at the latest (a release may come sooner).
   */
  flowWait: number | null;
  /** The window as this take left it; null when the take had no use for it. */
  window: Window | null;
  /** The take found no other reader holding entries under the window (it may take ahead). */
  alone: boolean;
}

const READ_STATES: ReadState[] = ["none", "empty", "some", "more", "no-room"];

/** Messages as one text: their JSON texts, joined by commas ("" when none). */
export interface Joined {
  count: number;
  text: string;
}

/** Runs one take on `client` (db.redis repeats on a lost reply; push sends it on db.once). */
export async function take(client: Redis, db: Db, q: Queue, r: TakeRequest): Promise<TakeResult> {
  const call = takeCall(db, q, r);
  return readTake(await runScript(client, call.script, call.keys, call.args), r.joined);
}

/** A take as one call of a batch (redis.ts sendBatch); its reply read with readTake. */
export function takeCall(db: Db, q: Queue, r: TakeRequest) {
  const types = r.types ?? [];
  const args = [
    q.group,
    r.reader,
    r.holder ?? "",
    q.redrive ? "1" : "0",
    String(r.now),
    String(LEASE_BASE_MS),
    String(r.visibilityMs),
    String(r.count),
    String(r.byteBudget),
    r.look ? "1" : "0",
    String(r.maxAttempts ?? 0),
    r.cursor ?? "",
    String(r.cap?.requests ?? 0),
    String(r.cap?.batchSize ?? 1),
    String(r.cap?.own ?? 0),
    String(r.pendingLimit ?? 0),
    q.schedule.retry,
    r.cover ? "1" : "0",
    q.schedule.wake,
    String(r.paceIntervalMs ?? 0),
    r.end ? "1" : "0",
    r.ownIds ? "1" : "0",
    String(r.sizeHint ?? 0),
    String(r.busyWakeMs ?? 0),
    traceSeed(q.channel),
    String(r.flow?.leaseMs ?? 0),
    String(r.flow?.parallelism ?? 0),
    String(r.flow?.intervalMs ?? 0),
    String(r.flow?.horizonMs ?? 0),
    r.window ? stateField(q.subscription, "concurrency") : "",
    stateField(q.subscription, "concurrencyCutAt"),
    String(r.window?.start ?? 1),
    String(r.window?.succeeded ?? 0),
    String(r.window?.congestedAt ?? 0),
    String(r.window?.known?.size ?? 0),
    String(r.window?.known?.cutAt ?? 0),
    r.joined ? "1" : "0",
    String(types.length),
    ...types,
    String(r.ack?.length ?? 0),
    ...(r.ack ?? []),
    String(r.nack?.length ?? 0),
    ...(r.nack ?? []).flatMap((n) => [
      String(Math.max(0, Math.round(n.visibleInMs))),
      n.retryCount === undefined ? "" : String(n.retryCount),
      String(n.ids.length),
      ...n.ids,
    ]),
  ];
  // Without a flow key, its key is named and never touched; so is the state key without a window.
  // An ordered subscription's lanes come last (KEYS[6]), so that every other key keeps its place.
  const keys = [
    q.stream,
    db.keys.due(),
    q.pace,
    db.keys.flow(r.flow?.key ?? ""),
    db.keys.state(q.channel),
  ];
  if (r.lanes !== undefined) {
    keys.push(r.lanes.key);
    args.push(PARKED, String(r.lanes.dead.length), ...r.lanes.dead);
  }
  return { script: TAKE_LUA, keys, args };
}

/** A subscription's window of requests in flight (lua/take.ts: window). */
export interface Window {
  /** Requests it allows in flight: its whole part. */
  size: number;
  /** When it was last halved (ms); 0: never (it is still in slow start). */
  cutAt: number;
}

/** What a reader's requests met since its last take: what moves the window. */
export interface Signals {
  /** Requests the endpoint took (2xx). */
  succeeded: number;
  /** When the latest request that met congestion was sent (ms); 0: none did. */
  congestedAt: number;
}

/** What a take's script answered (see lua/take.ts); `joined` as the take asked. */
export function readTake(value: unknown, joined = false): TakeResult {
  const [acked, nacked, flat, deadFlat, filtered, largest, read, paceAt, room, next, ...rest] =
    asArray(value);
  const [flowAt, wait, size, cutAt, alone] = rest;
  const taken: Taken[] = [];
  const entries = asArray(flat);
  for (let i = 0; !joined && i + 7 < entries.length; i += 8) {
    const traceparent = asString(entries[i + 5]);
    const tracestate = asString(entries[i + 6]);
    taken.push({
      entryId: asString(entries[i]),
      messageId: asString(entries[i + 1]),
      attempt: asNumber(entries[i + 2]),
      text: asString(entries[i + 3]),
      bytes: asNumber(entries[i + 4]),
      trace: tracestate ? { traceparent, tracestate } : { traceparent },
      orderingKey: asString(entries[i + 7]) || null,
    });
  }
  const dead: TakeResult["dead"] = [];
  const deadEntries = asArray(deadFlat);
  for (let i = 0; i + 1 < deadEntries.length; i += 2) {
    dead.push({ entryId: asString(deadEntries[i]), deliveries: asNumber(deadEntries[i + 1]) });
  }
  const state = typeof read === "number" ? READ_STATES[read] : undefined;
  const space = asNumber(room);
  return {
    acked: asNumber(acked),
    nacked: asNumber(nacked),
    taken,
    joined: joined ? { text: asString(entries[0]), count: asNumber(entries[1]) } : null,
    dead,
    filtered: asNumber(filtered),
    largest: asNumber(largest),
    read: state ?? "no-room",
    refused: state === undefined ? refusedAt(asString(read)) : null,
    paceAt: asNumber(paceAt) > 0 ? asNumber(paceAt) : null,
    room: space < 0 ? null : space,
    nextAt: asNumber(next) > 0 ? asNumber(next) : null,
    flowAt: asNumber(flowAt) > 0 ? asNumber(flowAt) : null,
    flowWait: asNumber(wait) > 0 ? asNumber(wait) : null,
    window: asString(size) === "" ? null : { size: Number(asString(size)), cutAt: asNumber(cutAt) },
    alone: asNumber(alone) === 1,
  };
}

/** The pending count Upstash's refusal of an XREADGROUP names; any other error is thrown. */
function refusedAt(error: string): number {
  if (!error.includes("XReadGroup is cancelled")) replyOf({ error }); // thrown as the client would
  const match = /Current PEL size: (\d+)/.exec(error);
  return match ? Number(match[1]) : PENDING_LIMIT;
}

/** Upstash refuses XREADGROUP once a consumer's pending entries + COUNT would pass this. */
export const PENDING_LIMIT = 1000;
