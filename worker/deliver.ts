// One delivery attempt: build the batch's body, sign it, POST it, and say what the endpoint
// answered. It decides nothing about retries (judge.ts does) and touches no Redis.
//
// The body is assembled as text around each message's stored JSON, so message data passes from
// the stream to the webhook without a parse and a re-serialise.

import { sign } from "../shared/signing.ts";
import type { UnitEntry } from "./entries.ts";
import { parseRetryAfter } from "./retry.ts";

export type AttemptResult =
  /** 2xx: everything was accepted but the message ids the endpoint listed in {"failed": [...]}. */
  | { ok: true; failedIds: Set<string> }
  /**
   * Nothing was accepted: non-2xx (3xx included: redirects are not followed), timeout, network
   * error, or a 2xx whose body could not be read. `status` is null when no status arrived.
   */
  | { ok: false; status: number | null; reason: string; retryAfterMs: number | null };

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

export function webhookBody(endpoint: Endpoint, entries: UnitEntry[]): string {
  const messages = entries.map(({ message, attempt }) => {
    const type = message.type === null ? "null" : JSON.stringify(message.type);
    return `{"id":${JSON.stringify(message.id)},"type":${type},"data":${message.data},"publishedAt":"${message.publishedAt}","attempt":${attempt}}`;
  });
  return `{"channel":${JSON.stringify(endpoint.channel)},"subscription":${JSON.stringify(endpoint.subscription)},"messages":[${messages.join(",")}]}`;
}

/**
 * The webhook-id of a batch: a hash of the subscription (its identity) and its message ids, so
 * every retry of the same batch carries the same id (receivers can drop a batch they already
 * processed), and two subscriptions given the same messages get different ids.
 */
export async function webhookId(endpoint: Endpoint, entries: UnitEntry[]): Promise<string> {
  const text = `${endpoint.channel}/${endpoint.group}/${entries.map((e) => e.message.id).join(",")}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  const hex = [...new Uint8Array(digest).slice(0, 16)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
  return `msg_${hex}`;
}

export async function deliver(
  endpoint: Endpoint,
  entries: UnitEntry[],
  now: number,
): Promise<AttemptResult> {
  const body = webhookBody(endpoint, entries);
  const id = await webhookId(endpoint, entries);
  const timestamp = Math.floor(now / 1000);
  const headers = {
    "content-type": "application/json",
    "user-agent": "streamhook/1",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": await sign(endpoint.secrets, id, timestamp, body),
  };
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
    return failure(null, failureReason(error, endpoint.timeoutMs, "network error"));
  }
  if (response.status >= 200 && response.status < 300) {
    try {
      return { ok: true, failedIds: parseFailed(await readReply(response)) };
    } catch (error) {
      // The endpoint said 2xx but its answer broke off: it may have meant {"failed": [...]}, so
      // nothing counts as accepted.
      const why = failureReason(error, endpoint.timeoutMs, "reading the reply failed");
      return failure(response.status, `HTTP ${response.status}, then ${why}`);
    }
  }
  await response.body?.cancel().catch(() => {});
  if (response.status >= 300 && response.status < 400) {
    const to = response.headers.get("location");
    const where = to ? ` to ${to.slice(0, 200)}` : "";
    return failure(
      response.status,
      `HTTP ${response.status}: a redirect${where}, which is not followed`,
    );
  }
  const retryAfter =
    response.status === 429 || response.status === 503
      ? parseRetryAfter(response.headers.get("retry-after"), now)
      : null;
  return {
    ok: false,
    status: response.status,
    reason: `HTTP ${response.status}`,
    retryAfterMs: retryAfter,
  };
}

function failure(status: number | null, reason: string): AttemptResult {
  return { ok: false, status, reason: reason.slice(0, MAX_REASON_CHARS), retryAfterMs: null };
}

function failureReason(error: unknown, timeoutMs: number, what: string): string {
  if (error instanceof Error && error.name === "TimeoutError")
    return `timeout after ${timeoutMs} ms`;
  return `${what}: ${error instanceof Error ? error.message : String(error)}`;
}

// The reply's text, up to MAX_REPLY_BYTES (the rest is not read). Throws when the body cannot be
// read: the connection reset, or the timeout struck mid-body.
async function readReply(response: Response): Promise<string> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    bytes += value.byteLength;
    if (bytes > MAX_REPLY_BYTES) {
      await reader.cancel().catch(() => {});
      return "";
    }
    text += decoder.decode(value, { stream: true });
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
