// The attempt log: at least the last ~1,000 webhook requests of each push subscription, in
// {p}:attempts:<ch>:<sub> (a stream, see keys.ts), so "why did my webhook not arrive?" has an
// answer: what was sent, when, and what the endpoint said.
//
// The worker appends the records of a deliverer's requests through its isolate's ledger
// (worker/ledger.ts: written once a second for every run of the isolate, and at the end of a pass
// or a queue invocation), RECORDS_PER_ENTRY to an XADD; a run with a failure writes its report at
// once with its subscription's records (lua/report.ts). Upstash bills each command, and a record
// per XADD was most of a backlog's cost (0.9 of 2.1 commands per batch of 100, 1 of 1.73 per
// message at batch size 1). An entry holds its records in the order they were made: the first
// under RECORD_FIELDS' names, the i-th (i >= 1) under the same names followed by i (a1, n1, ...).
// So a one-record entry is exactly the entry of a log written before records were packed. The
// API reads the log newest first: a record's id is its entry's, with ".<i>" after it for the i-th.
// Pull subscriptions make no requests: no log.
//
// The log is capped in entries (XADD MAXLEN ~ ATTEMPT_LOG_LENGTH), so it always keeps at least
// the last ATTEMPT_LOG_LENGTH requests, and RECORDS_PER_ENTRY bounds what it can hold: up to ten
// times as many requests for a subscription that finishes ten between two round trips.

import { asEntries, type Db } from "./redis.ts";

/** The HTTP status of the answer, or why none came whole. */
export type AttemptStatus = number | "timeout" | "network";

/** One webhook request, as the log keeps it. */
export interface AttemptRecord {
  /** When the POST started (ms). */
  at: number;
  /** The attempt number of its messages (the highest, should they differ). */
  attempt: number;
  messages: number;
  firstId: string;
  lastId: string;
  /**
   * The answer's status; "timeout" or "network" when no whole answer came (a 2xx whose body broke
   * off included: its error says so).
   */
  status: AttemptStatus;
  /** From the POST's start to the end of its answer's body (or the failure). */
  durationMs: number;
  /** Null when the endpoint accepted the request (2xx), else what went wrong. */
  error: string | null;
  /** The first 1 KiB (RESPONSE_SNIPPET_BYTES) of the answer's body, as UTF-8 text. */
  body: string;
  /**
   * The request's traceparent header (shared/trace.ts): its span, in its messages' trace when
   * they share one. Null in a record written before tracing.
   */
  traceparent: string | null;
  /**
   * An ordered subscription's failed request: the ordering keys it holds back from now on (null:
   * the keyless messages' lane), each behind its message that failed here (lua/take.ts: lanes).
   * Empty otherwise, and in records written before ordering.
   */
  held: HeldBehind[];
}

/** An ordering key held back behind a message. */
export interface HeldBehind {
  orderingKey: string | null;
  messageId: string;
}

/** How much of an answer's body a record (and lastError) keeps. */
export const RESPONSE_SNIPPET_BYTES = 1024;

/**
 * Entries kept per subscription (XADD MAXLEN ~ this: whole stream nodes of 100, so up to 100
 * more), each of one to RECORDS_PER_ENTRY records: at least this many requests are kept.
 */
export const ATTEMPT_LOG_LENGTH = 1000;

/**
 * Records an entry holds at most. A take carries the records of the requests it acks, ten at a
 * time on a backlog at the default maxConcurrency: one XADD for them. The bound keeps a full log
 * (records of up to ~1.7 KB) under ~19 MB, well inside Upstash's 100 MB per key.
 */
export const RECORDS_PER_ENTRY = 10;

/** The stream fields of a record, in this order; "" values are left out of the entry. */
export const RECORD_FIELDS = ["a", "n", "m", "f", "l", "s", "d", "e", "b", "t", "h"] as const;

/**
 * A record's values in RECORD_FIELDS order, "" for a null error or traceparent, no body, or
 * nothing held (else `h` is the JSON of [key, message id] pairs).
 */
export function recordValues(r: AttemptRecord): string[] {
  return [
    String(r.at),
    String(r.attempt),
    String(r.messages),
    r.firstId,
    r.lastId,
    String(r.status),
    String(r.durationMs),
    r.error ?? "",
    r.body,
    r.traceparent ?? "",
    r.held.length === 0 ? "" : JSON.stringify(r.held.map((h) => [h.orderingKey, h.messageId])),
  ];
}

/** The name of a record's field in its entry: the i-th record's carry i after them (i >= 1). */
const fieldOf = (field: string, i: number) => (i === 0 ? field : `${field}${i}`);

/** Records as the fields of one stream entry (XADD), in their order: empty values left out. */
export function recordsEntry(records: AttemptRecord[]): Record<string, string> {
  const entry: Record<string, string> = {};
  records.forEach((r, i) => {
    const values = recordValues(r);
    RECORD_FIELDS.forEach((field, k) => {
      if (values[k] !== "") entry[fieldOf(field, i)] = values[k]!;
    });
  });
  return entry;
}

/**
 * Records as the arguments of the log's entries, RECORDS_PER_ENTRY to one, as lua/log-entries.ts
 * reads them: how many entries, then each: how many fields, then its field/value pairs.
 */
export function logEntryArgs(records: AttemptRecord[]): string[] {
  const args = [String(Math.ceil(records.length / RECORDS_PER_ENTRY))];
  for (let i = 0; i < records.length; i += RECORDS_PER_ENTRY) {
    const fields = Object.entries(recordsEntry(records.slice(i, i + RECORDS_PER_ENTRY)));
    args.push(String(fields.length), ...fields.flat());
  }
  return args;
}

/** An entry's records, oldest first: each as its fields by their plain names. */
function unpack(fields: Record<string, string>): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  // Every record has its start time `a`: the entry holds records up to the first one without.
  for (let i = 0; fields[fieldOf("a", i)] !== undefined; i++) {
    const record: Record<string, string> = {};
    for (const field of RECORD_FIELDS) {
      const value = fields[fieldOf(field, i)];
      if (value !== undefined) record[field] = value;
    }
    out.push(record);
  }
  return out;
}

function statusOf(text: string | undefined): AttemptStatus {
  if (text === "timeout" || text === "network") return text;
  return Number(text ?? 0);
}

function heldOf(text: string | undefined): HeldBehind[] {
  if (!text) return [];
  const pairs = JSON.parse(text) as [string | null, string][];
  return pairs.map(([orderingKey, messageId]) => ({ orderingKey, messageId }));
}

/**
 * A record as the API shows it: `at` as ISO-8601, with its id (the paging cursor): its log
 * entry's, and ".<i>" after it for the entry's i-th record (i >= 1).
 */
export type AttemptView = Omit<AttemptRecord, "at"> & { id: string; at: string };

/** A record's id, the other way: its entry's id and its index there. */
function splitId(id: string): { entry: string; index: number } {
  const dot = id.indexOf(".");
  return dot < 0
    ? { entry: id, index: 0 }
    : { entry: id.slice(0, dot), index: Number(id.slice(dot + 1)) };
}

function viewOf(id: string, f: Record<string, string>): AttemptView {
  return {
    id,
    at: new Date(Number(f.a ?? 0)).toISOString(),
    attempt: Number(f.n ?? 0),
    messages: Number(f.m ?? 0),
    firstId: f.f ?? "",
    lastId: f.l ?? "",
    status: statusOf(f.s),
    durationMs: Number(f.d ?? 0),
    error: f.e ?? null,
    body: f.b ?? "",
    traceparent: f.t ?? null,
    held: heldOf(f.h),
  };
}

/**
 * A page of a subscription's attempt log, newest first, before `after` (a record's id,
 * exclusive); `next` is the cursor of the following page, null when there is none. XREVRANGEs of
 * as many entries as the page needs were each as full as those read so far (its records are read
 * whole, and one more tells whether another page exists): 1 for a log of full entries, 2 for one
 * of single records.
 */
export async function readAttempts(
  db: Db,
  channel: string,
  name: string,
  page: { after?: string | undefined; limit: number },
): Promise<{ attempts: AttemptView[]; next: string | null }> {
  const after = page.after ? splitId(page.after) : null;
  // Nothing comes before the smallest id (and Redis refuses to range below it).
  if (after?.entry === "0-0" && after.index === 0) return { attempts: [], next: null };
  const log = db.keys.attempts(channel, name);
  // After an entry's first record come older entries only; after a later one, the entry's
  // records before it first.
  let end = after === null ? "+" : after.index === 0 ? `(${after.entry}` : after.entry;
  const views: AttemptView[] = [];
  // Records per entry: full entries at first, then as many as the entries read so far held.
  let perEntry = RECORDS_PER_ENTRY;
  let read = { entries: 0, records: 0 };
  while (views.length <= page.limit) {
    const wanted = page.limit + 1 - views.length;
    const count = Math.ceil(wanted / perEntry) + 1;
    const entries = asEntries(await db.redis.xrevrange(log, end, "-", count));
    for (const { id, fields } of entries) {
      const records = unpack(fields ?? {});
      read = { entries: read.entries + 1, records: read.records + records.length };
      const below = after !== null && id === after.entry ? after.index : records.length;
      for (let i = Math.min(below, records.length) - 1; i >= 0; i--) {
        views.push(viewOf(i === 0 ? id : `${id}.${i}`, records[i]!));
      }
    }
    if (entries.length < count) break;
    end = `(${entries.at(-1)!.id}`;
    perEntry = Math.max(1, Math.floor(read.records / read.entries));
  }
  const attempts = views.slice(0, page.limit);
  const next = views.length > page.limit ? (attempts.at(-1)?.id ?? null) : null;
  return { attempts, next };
}
