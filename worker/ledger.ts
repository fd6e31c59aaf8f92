// The isolate's ledger: what deliverer runs owe the subscriptions' bookkeeping, kept for up to
// LEDGER_FLUSH_MS and written for every run of the isolate at once (lua/ledger.ts):
//
//   owed                             written
//   attempt records (every request)  ridden by the next round trip of a run once LEDGER_FLUSH_MS
//   a run's report that only         old, or LEDGER_MAX_RECORDS many; at the end of a pass or a
//   succeeded (counters, lastSuccess) queue batch; at the end of a publish's kick once it is
//                                    LEDGER_FLUSH_MS old (settleSoon), so the runs of the
//                                    publishes of a second join one write; and, when nothing
//                                    ends by WATCH_GRACE_MS past that (a burst is over), by the
//                                    one kick that watches it
//
// Measured (bench steady-stream): a kick that slept out the second and then wrote it gave
// deliveries a tail of 0.6 to 6 s in about half the runs (mechanism not found; no command or
// error of the product's came with it); one that writes at its end when due, and watches
// otherwise, gave none in five (p99 83-156 ms, max <= 268 ms; before the ledger 83-106 / 233).
//
// A run whose report says more than a success (a failure, a recovery, a 410's pause) writes it
// at once (lua/report.ts), after what its subscription owed here (the same request, in order).
//
// Why: a lone message (one subscriber, a publish every 50 ms) cost 26 commands, 9 of them the
// run's report and its record, per run. Written here, 10 runs' records are one XADD and every
// run of the second one report: a second of counters at most is what an isolate killed
// mid-flight loses (the messages are acked or pending as before: never these). Counters and
// the attempt log may show a delivery up to LEDGER_FLUSH_MS after its receipt.
//
// Only plain data lives here, never a client: a Worker may not use one invocation's I/O in
// another. Whoever writes does it with its own (live) invocation's Db.

import { ATTEMPT_LOG_LENGTH, type AttemptRecord, logEntryArgs } from "../shared/attempt-log.ts";
import { metricsField, stateField } from "../shared/keys.ts";
import { LEDGER_LUA } from "../shared/lua/ledger.ts";
import { type Call, type Db, isOutcomeUnknown, sendBatch } from "../shared/redis.ts";
import type { Subscription } from "../shared/subscription.ts";
import { type Counts, counterIncrements } from "./attempts.ts";

/** How long the ledger keeps what it is owed before a round trip must carry it. */
export const LEDGER_FLUSH_MS = 1_000;
/** Records the ledger keeps before a round trip must carry them. */
export const LEDGER_MAX_RECORDS = 200;
/** Subscriptions one write carries (a script's unpack and Upstash's request size stay small). */
const SUBS_PER_WRITE = 200;

/** What one subscription is owed. */
export interface Owing {
  sub: { channel: string; name: string; id: string };
  /** Counter field -> delta. */
  counts: Map<string, number>;
  /** The latest success of its runs owed here (their state). */
  success: { at: number; lastAckedId: string | null } | null;
  records: AttemptRecord[];
  /** When the oldest of it was owed (ms). */
  since: number;
}

const keyOf = (sub: { channel: string; name: string }) => `${sub.channel}\n${sub.name}`;

export class Ledger {
  private readonly owing = new Map<string, Owing>();
  private records = 0;
  private oldest = Number.POSITIVE_INFINITY;

  get empty(): boolean {
    return this.owing.size === 0;
  }

  /** When the oldest of what is owed was owed (ms; Infinity: nothing). */
  get oldestAt(): number {
    return this.oldest;
  }

  /** Adds what a run owes its subscription. */
  owe(
    sub: Subscription,
    now: number,
    owed: { records?: AttemptRecord[]; counts?: Counts; success?: Owing["success"] },
  ): void {
    const counts = new Map<string, number>();
    const pairs = owed.counts
      ? counterIncrements(owed.counts, (c) => metricsField(sub.name, c))
      : [];
    for (let i = 0; i < pairs.length; i += 2) counts.set(pairs[i]!, Number(pairs[i + 1]));
    const { records = [], success = null } = owed;
    // A run that sent nothing owes nothing: no write for it.
    if (records.length === 0 && counts.size === 0 && success === null) return;
    const ids = { channel: sub.channel, name: sub.name, id: sub.id };
    this.add({ sub: ids, counts, success, records, since: now }, false);
  }

  /** Whether a round trip at `now` must carry what is owed: it is old, or much. */
  due(now: number): boolean {
    return (
      !this.empty && (now - this.oldest >= LEDGER_FLUSH_MS || this.records >= LEDGER_MAX_RECORDS)
    );
  }

  /**
   * Takes the attempt records one subscription owes: a report of its own is about to be written,
   * which appends them before its run's own (lua/report.ts). Its counters and success stay.
   */
  takeRecords(sub: { channel: string; name: string; id: string }): AttemptRecord[] {
    const o = this.owing.get(keyOf(sub));
    if (!o || o.sub.id !== sub.id) return [];
    const records = o.records;
    o.records = [];
    this.records -= records.length;
    if (o.counts.size === 0 && o.success === null) {
      this.owing.delete(keyOf(sub));
      this.resetOldest();
    }
    return records;
  }

  /** Takes everything owed. */
  takeAll(): Owing[] {
    const all = [...this.owing.values()];
    this.owing.clear();
    this.records = 0;
    this.oldest = Number.POSITIVE_INFINITY;
    return all;
  }

  /** Puts back what a write took that did not run (refused, or Redis unreachable). */
  restore(taken: Owing[]): void {
    for (const t of taken) this.add(t, true);
  }

  /**
   * Adds `o` to what its subscription owes: before what is owed already (`first`: what a write
   * took and gives back) or after it. Owed by an older subscription of the same name, either is
   * dropped: that one is gone (its write would skip it).
   */
  private add(o: Owing, first: boolean): void {
    const key = keyOf(o.sub);
    const there = this.owing.get(key);
    this.records += o.records.length;
    if (!there || (there.sub.id !== o.sub.id && !first)) {
      if (there) this.records -= there.records.length;
      this.owing.set(key, { ...o, counts: new Map(o.counts), records: [...o.records] });
    } else if (there.sub.id !== o.sub.id) {
      this.records -= o.records.length;
      return;
    } else {
      if (first) there.records.unshift(...o.records);
      else there.records.push(...o.records);
      for (const [field, n] of o.counts)
        there.counts.set(field, (there.counts.get(field) ?? 0) + n);
      // The latest success's state; its last acked id, or the one before when it acked none.
      const [older, later] =
        (there.success?.at ?? -1) <= (o.success?.at ?? -1) ? [there, o] : [o, there];
      if (later.success) {
        there.success = {
          at: later.success.at,
          lastAckedId: later.success.lastAckedId ?? older.success?.lastAckedId ?? null,
        };
      }
      there.since = Math.min(there.since, o.since);
    }
    this.oldest = Math.min(this.oldest, o.since);
  }

  private resetOldest(): void {
    this.oldest = Number.POSITIVE_INFINITY;
    for (const o of this.owing.values()) this.oldest = Math.min(this.oldest, o.since);
  }
}

/** The isolate's one ledger. */
export const ledger = new Ledger();

/** What is owed, as the calls of a batch (lua/ledger.ts): one per SUBS_PER_WRITE. */
export function ledgerCalls(db: Db, owing: Owing[]): Call[] {
  return chunked(owing).map((c) => ledgerCall(db, c));
}

function chunked(owing: Owing[]): Owing[][] {
  const chunks: Owing[][] = [];
  for (let i = 0; i < owing.length; i += SUBS_PER_WRITE)
    chunks.push(owing.slice(i, i + SUBS_PER_WRITE));
  return chunks;
}

function ledgerCall(db: Db, owing: Owing[]): Call {
  const byChannel = new Map<string, Owing[]>();
  for (const o of owing) {
    const list = byChannel.get(o.sub.channel) ?? [];
    list.push(o);
    byChannel.set(o.sub.channel, list);
  }
  const keys = [db.keys.written(`ledger.${crypto.randomUUID()}`)];
  const args = [String(ATTEMPT_LOG_LENGTH)];
  for (const [channel, list] of byChannel) {
    keys.push(db.keys.subscriptions(channel), db.keys.state(channel), db.keys.metrics(channel));
    args.push(String(list.length));
    for (const o of list) {
      const name = o.sub.name;
      keys.push(db.keys.attempts(channel, name));
      args.push(
        name,
        o.sub.id,
        String(o.success?.at ?? 0),
        o.success?.lastAckedId ?? "",
        stateField(name, "failures"),
        stateField(name, "lastSuccessAt"),
        stateField(name, "lastAckedId"),
        stateField(name, "lastErrorAt"),
        String(o.counts.size),
        ...[...o.counts].flatMap(([field, n]) => [field, String(n)]),
      );
      args.push(...logEntryArgs(o.records));
    }
  }
  return { script: LEDGER_LUA, keys, args };
}

/**
 * Writes what is owed now, with this invocation's Db. A write Redis refused, or could not be
 * reached for, is kept for the next (false: something was kept); one whose reply was lost after
 * the repeats is dropped (it may have run: a second write would count it twice).
 */
export async function writeLedger(db: Db): Promise<boolean> {
  const owing = ledger.takeAll();
  if (owing.length === 0) return true;
  const chunks = chunked(owing);
  try {
    const replies = await sendBatch(
      db.redis,
      chunks.map((c) => ledgerCall(db, c)),
    );
    let kept = false;
    replies.forEach((reply, i) => {
      if (reply.ok) return;
      kept = true;
      ledger.restore(chunks[i]!);
      console.error("the delivery ledger's write was refused:", reply.error);
    });
    return !kept;
  } catch (error) {
    const kept = !isOutcomeUnknown(error);
    if (kept) ledger.restore(owing);
    console.error("could not write the delivery ledger:", error);
    return !kept;
  }
}

// A kick that watches the ledger for what nobody wrote.
let watching = false;
/** How long past due the watcher leaves the write to the next invocation to end. */
const WATCH_GRACE_MS = 250;

/**
 * A publish's kick at its end (in its waitUntil). The ledger is written by whichever invocation
 * ends once it is due (LEDGER_FLUSH_MS old): at once, so the runs of the publishes of that second
 * join one write. Until then one kick of the isolate watches it: should none end within
 * WATCH_GRACE_MS of its being due (a burst is over), the watcher writes it, with its own Db.
 */
export async function settleSoon(
  db: Db,
  clock: () => number,
  sleep: (ms: number) => Promise<void>,
): Promise<void> {
  if (ledger.due(clock())) {
    await writeLedger(db);
    return;
  }
  if (ledger.empty || watching) return;
  watching = true;
  try {
    while (!ledger.empty) {
      const at = ledger.oldestAt + LEDGER_FLUSH_MS + WATCH_GRACE_MS;
      if (at > clock()) await sleep(at - clock());
      // Still there: nobody came to write it. Refused, or Redis out of reach: kept for the next
      // invocation to end, not tried again here at once.
      if (ledger.oldestAt + LEDGER_FLUSH_MS + WATCH_GRACE_MS <= clock() && !(await writeLedger(db)))
        break;
    }
  } finally {
    watching = false;
  }
}
