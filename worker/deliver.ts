// One delivery attempt: build the batch's body, sign it, POST it, and say what the endpoint
// answered, with the first 1 KiB of its answer's body (the attempt log's and lastError's
// snippet). It decides nothing about retries (judge.ts does) and touches no Redis.
//
// The body is assembled as text around each message's JSON, which the take wrote
// (lua/encode.ts), so message data passes from the stream to the webhook without a parse and a
// re-serialise. The request, its answer's body included, is one subrequest of the invocation's
// meter, holding one of its connections while it runs.
//
// Trace context: the request carries its own `traceparent` (and `tracestate`) header, a span of
// the attempt (shared/trace.ts requestTrace); each message in the body carries its publish's,
// written by the take with its JSON. Headers are not signed, so the signature is the same.

import { type AttemptStatus, RESPONSE_SNIPPET_BYTES } from "../shared/attempt-log.ts";
import type { Taken } from "../shared/engine/take.ts";
import type { Meter } from "../shared/meter.ts";
import { sign } from "../shared/signing.ts";
import type { TraceContext } from "../shared/trace.ts";
import { parseRetryAfter } from "./retry.ts";

export type Answer =
  /** 2xx: everything was accepted but the message ids the endpoint listed in {"failed": [...]}. */
  | { ok: true; failedIds: Set<string>; answer: AttemptStatus; body: string }
  /**
   * Nothing was accepted: non-2xx (3xx included: redirects are not followed), timeout, network
   * error, or a 2xx whose body could not be read. `status` is null when no status arrived.
   */
  | {
      ok: false;
      status: number | null;
      reason: string;
      retryAfterMs: number | null;
      answer: AttemptStatus;
      body: string;
    };

export interface Endpoint {
  channel: string;
  subscription: string;
  /** The subscription's consumer group: its identity, so a new subscription of the same name
   * never repeats an old one's webhook-ids. */
  group: string;
  url: string;
  timeoutMs: number;
  secrets: string[];
}

// The endpoint's answer is read for {"failed": [...]} up to this size: 1,000 ids (the largest
// batch) take well under 64 KiB. A longer body is not a list of ids, and is not read further.
const MAX_REPLY_BYTES = 256 * 1024;
// lastError keeps this much of a reason (a network error's message can be long).
const MAX_REASON_CHARS = 500;

export function webhookBody(endpoint: Endpoint, entries: Taken[]): string {
  const messages = entries.map((e) => e.text).join(",");
  return `{"channel":${JSON.stringify(endpoint.channel)},"subscription":${JSON.stringify(endpoint.subscription)},"messages":[${messages}]}`;
}

/**
 * The webhook-id of a batch: a hash of the subscription (its identity) and its message ids, so
 * every retry of the same batch carries the same id (receivers can drop a batch they already
 * processed), and two subscriptions given the same messages get different ids.
 */
export async function webhookId(endpoint: Endpoint, entries: Taken[]): Promise<string> {
  const text = `${endpoint.channel}/${endpoint.group}/${entries.map((e) => e.messageId).join(",")}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest).slice(0, 16)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `msg_${hex}`;
}

/**
 * POSTs `entries` at `now` through the invocation's meter, in the attempt's `trace`, and says
 * what the endpoint answered.
 */
export function deliver(
  meter: Meter,
  endpoint: Endpoint,
  entries: Taken[],
  now: number,
  trace: TraceContext,
): Promise<Answer> {
  return meter.subrequest(() => post(endpoint, entries, now, trace));
}

async function post(
  endpoint: Endpoint,
  entries: Taken[],
  now: number,
  trace: TraceContext,
): Promise<Answer> {
  const body = webhookBody(endpoint, entries);
  const id = await webhookId(endpoint, entries);
  const timestamp = Math.floor(now / 1000);
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "streamhook/1",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await sign(endpoint.secrets, id, timestamp, body),
    traceparent: trace.traceparent,
  };
  if (trace.tracestate) headers.tracestate = trace.tracestate;
  // One timeout for the whole exchange, the reply's body included.
  const signal = AbortSignal.timeout(endpoint.timeoutMs);
  let response: Response;
  try {
    response = await fetch(endpoint.url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal,
    });
  } catch (error) {
    return failure(null, error, endpoint.timeoutMs, "", "network error", "");
  }
  if (response.status >= 200 && response.status < 300) {
    const reply = await readReply(response);
    if (reply.error === undefined) {
      const failedIds = parseFailed(reply.text);
      return { ok: true, failedIds, answer: response.status, body: reply.snippet };
    }
    // The endpoint said 2xx but its answer broke off: it may have meant {"failed": [...]}, so
    // nothing counts as accepted.
    const then = `HTTP ${response.status}, then `;
    const what = "reading the reply failed";
    return failure(response.status, reply.error, endpoint.timeoutMs, then, what, reply.snippet);
  }
  // Only the snippet is read of a refusal; the rest is not waited for.
  const snippet = await readSnippet(response);
  const answer = response.status;
  if (response.status >= 300 && response.status < 400) {
    const to = response.headers.get("location");
    const where = to ? ` to ${to.slice(0, 200)}` : "";
    const reason = `HTTP ${response.status}: a redirect${where}, which is not followed`;
    return { ok: false, status: answer, reason, retryAfterMs: null, answer, body: snippet };
  }
  const retryAfter =
    response.status === 429 || response.status === 503
      ? parseRetryAfter(response.headers.get("retry-after"), now)
      : null;
  const reason = `HTTP ${response.status}`;
  return { ok: false, status: answer, reason, retryAfterMs: retryAfter, answer, body: snippet };
}

// No whole answer: a timeout, or a network error (a reset, a body cut off).
function failure(
  status: number | null,
  error: unknown,
  timeoutMs: number,
  prefix: string,
  what: string,
  body: string,
): Answer {
  const timedOut = error instanceof Error && error.name === "TimeoutError";
  const why = timedOut
    ? `timeout after ${timeoutMs} ms`
    : `${what}: ${error instanceof Error ? error.message : String(error)}`;
  const reason = `${prefix}${why}`.slice(0, MAX_REASON_CHARS);
  const answer = timedOut ? "timeout" : "network";
  return { ok: false, status, reason, retryAfterMs: null, answer, body };
}

// The reply's text, up to MAX_REPLY_BYTES (longer, it is not read further and means nothing),
// and its first RESPONSE_SNIPPET_BYTES. `error` when the body cannot be read: the connection
// reset, or the timeout struck mid-body.
async function readReply(
  response: Response,
): Promise<{ text: string; snippet: string; error?: unknown }> {
  if (!response.body) return { text: "", snippet: "" };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const head = new Snippet();
  let text = "";
  let bytes = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text: text + decoder.decode(), snippet: head.text() };
      head.add(value);
      bytes += value.byteLength;
      if (bytes > MAX_REPLY_BYTES) {
        await reader.cancel().catch(() => {});
        return { text: "", snippet: head.text() };
      }
      text += decoder.decode(value, { stream: true });
    }
  } catch (error) {
    return { text: "", snippet: head.text(), error };
  }
}

// The first RESPONSE_SNIPPET_BYTES of a body; the rest is cancelled. A body that breaks off
// gives what came before.
async function readSnippet(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const head = new Snippet();
  try {
    while (!head.full()) {
      const { done, value } = await reader.read();
      if (done) break;
      head.add(value);
    }
  } catch {
    // What arrived is the snippet.
  }
  await reader.cancel().catch(() => {});
  return head.text();
}

/** The first RESPONSE_SNIPPET_BYTES bytes of a stream, as text (a character cut at the end is
 * replaced, U+FFFD). */
class Snippet {
  private readonly bytes = new Uint8Array(RESPONSE_SNIPPET_BYTES);
  private length = 0;
  add(chunk: Uint8Array): void {
    const n = Math.min(chunk.byteLength, RESPONSE_SNIPPET_BYTES - this.length);
    this.bytes.set(chunk.subarray(0, n), this.length);
    this.length += n;
  }
  full(): boolean {
    return this.length >= RESPONSE_SNIPPET_BYTES;
  }
  text(): string {
    return new TextDecoder().decode(this.bytes.subarray(0, this.length));
  }
}

// A 2xx may list the message ids it rejected: {"failed": ["<id>", ...]}, whatever its
// content-type (a plain Node handler sends none). Any other body, or none, accepts them all.
function parseFailed(text: string): Set<string> {
  if (!text.includes("failed")) return new Set();
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || !("failed" in parsed)) return new Set();
    const failed = (parsed as { failed: unknown }).failed;
    return new Set(Array.isArray(failed) ? failed.filter((x) => typeof x === "string") : []);
  } catch {
    return new Set();
  }
}
