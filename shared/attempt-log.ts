// The attempt log: the last ~1,000 webhook requests of each push subscription, in
// {p}:attempts:<ch>:<sub> (a stream capped with XADD MAXLEN ~ 1000, see keys.ts), so "why did my
// webhook not arrive?" has an answer: what was sent, when, and what the endpoint said.
//
// The worker appends one entry per request (worker/rounds.ts: in whichever round trip comes next,
// one XADD each, through worker/report.ts); the API reads it newest first. Pull subscriptions make no requests: no log.

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

/** Records kept per subscription: XADD MAXLEN ~ this (whole stream nodes: a few more at times). */
export const ATTEMPT_LOG_LENGTH = 1000;

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

/** A record as stream entry fields (XADD): empty values left out. */
export function recordEntry(r: AttemptRecord): Record<string, string> {
  const values = recordValues(r);
  const entry: Record<string, string> = {};
  RECORD_FIELDS.forEach((field, i) => {
    if (values[i] !== "") entry[field] = values[i]!;
  });
  return entry;
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

/** A record as the API shows it: `at` as ISO-8601, with its log entry's id (the paging cursor). */
export type AttemptView = Omit<AttemptRecord, "at"> & { id: string; at: string };

/**
 * A page of a subscription's attempt log, newest first, before `after` (an entry id, exclusive);
 * `next` is the cursor of the following page, null when there is none. 1 XREVRANGE.
 */
export async function readAttempts(
  db: Db,
  channel: string,
  name: string,
  page: { after?: string | undefined; limit: number },
): Promise<{ attempts: AttemptView[]; next: string | null }> {
  // Nothing comes before the smallest id (and Redis refuses to range below it).
  if (page.after === "0-0") return { attempts: [], next: null };
  const end = page.after ? `(${page.after}` : "+";
  // One more than asked tells whether another page exists.
  const raw = await db.redis.xrevrange(db.keys.attempts(channel, name), end, "-", page.limit + 1);
  const entries = asEntries(raw);
  const attempts = entries.slice(0, page.limit).map(({ id, fields }) => {
    const f = fields ?? {};
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
  });
  const next = entries.length > page.limit ? (attempts.at(-1)?.id ?? null) : null;
  return { attempts, next };
}
