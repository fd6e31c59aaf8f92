// The attempt log: at least the last ~1,000 webhook requests of each push subscription, in
// {p}:attempts:<ch>:<sub> (a stream, see keys.ts), so "why did my webhook not arrive?" has an
// answer: what was sent, when, and what the endpoint said.
//
// The worker appends the records of a deliverer's requests in whichever round trip comes next
// (worker/rounds.ts), ONE XADD for all of them (worker/report.ts): Upstash bills each command, and
// a record per XADD was most of a backlog's cost (0.9 of 2.1 commands per batch of 100). An entry
// holds its records in the order they were made: the first under RECORD_FIELDS' names, the i-th
// (i >= 1) under the same names followed by i (a1, n1, ...). So a one-record entry is exactly the
// entry of a log written before records were packed, and plain Lua can read them (lua/record.ts,
// which finds out after a lost reply which records were appended). The API reads the log newest
// first: a record's id is its entry's, with ".<i>" after it for the i-th. Pull subscriptions make
// no requests: no log.

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
 * Records kept per subscription, at least: an XADD of n records trims the log to about
 * ATTEMPT_LOG_LENGTH / n entries (logTrim), so a busy subscription's log holds about as many
 * requests as a quiet one's, and never more than ATTEMPT_LOG_LENGTH entries.
 */
export const ATTEMPT_LOG_LENGTH = 1000;

/** The XADD MAXLEN ~ threshold for an entry of `records` records (whole stream nodes are kept). */
export const logTrim = (records: number) => Math.ceil(ATTEMPT_LOG_LENGTH / Math.max(1, records));

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
 * exclusive); `next` is the cursor of the following page, null when there is none. 1 XREVRANGE:
 * each entry holds at least one record, so `limit` + 1 entries (and the one `after` is in) tell
 * whether another page exists.
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
  // After an entry's first record come older entries only; after a later one, the entry's
  // records before it first.
  const end = after === null ? "+" : after.index === 0 ? `(${after.entry}` : after.entry;
  const raw = await db.redis.xrevrange(db.keys.attempts(channel, name), end, "-", page.limit + 2);
  const views: AttemptView[] = [];
  for (const { id, fields } of asEntries(raw)) {
    const records = unpack(fields ?? {});
    const below = after !== null && id === after.entry ? after.index : records.length;
    for (let i = Math.min(below, records.length) - 1; i >= 0; i--) {
      views.push(viewOf(i === 0 ? id : `${id}.${i}`, records[i]!));
    }
    if (views.length > page.limit) break;
  }
  const attempts = views.slice(0, page.limit);
  const next = views.length > page.limit ? (attempts.at(-1)?.id ?? null) : null;
  return { attempts, next };
}
