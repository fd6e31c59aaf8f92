// One delivery attempt: build the batch's body, sign it, POST it, and say what the endpoint
// answered. It decides nothing about retries (outcome.ts does) and touches no Redis.
//
// The body is assembled as text around each message's stored JSON, so message data passes from
// the stream to the webhook without a parse and a re-serialise.

import { sign } from "../shared/signing.ts";
import type { UnitEntry } from "../shared/units.ts";
import { parseRetryAfter } from "./retry.ts";

export type AttemptResult =
  /** 2xx: everything was accepted but the message ids the endpoint listed in {"failed": [...]}. */
  | { ok: true; failedIds: Set<string> }
  /** Nothing was accepted: non-2xx, timeout or network error. */
  | { ok: false; gone: boolean; reason: string; retryAfterMs: number | null };

export interface Endpoint {
  channel: string;
  subscription: string;
  url: string;
  timeoutMs: number;
  secrets: string[];
}

// The endpoint's answer is read for {"failed": [...]} up to this size; more is not a list of ids.
const MAX_REPLY_BYTES = 256 * 1024;

export function webhookBody(endpoint: Endpoint, entries: UnitEntry[]): string {
  const messages = entries.map(({ message, attempt }) => {
    const type = message.type === null ? "null" : JSON.stringify(message.type);
    return `{"id":${JSON.stringify(message.id)},"type":${type},"data":${message.data},"publishedAt":"${message.publishedAt}","attempt":${attempt}}`;
  });
  return `{"channel":${JSON.stringify(endpoint.channel)},"subscription":${JSON.stringify(endpoint.subscription)},"messages":[${messages.join(",")}]}`;
}

/**
 * The webhook-id of a batch: a hash of the subscription and its message ids, so every retry of
 * the same batch carries the same id (receivers can drop a batch they already processed).
 */
export async function webhookId(endpoint: Endpoint, entries: UnitEntry[]): Promise<string> {
  const text = `${endpoint.channel}/${endpoint.subscription}/${entries.map((e) => e.message.id).join(",")}`;
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
  let response: Response;
  try {
    response = await fetch(endpoint.url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(endpoint.timeoutMs),
    });
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const reason = timedOut
      ? `timeout after ${endpoint.timeoutMs} ms`
      : `network error: ${error instanceof Error ? error.message : String(error)}`;
    return { ok: false, gone: false, reason, retryAfterMs: null };
  }
  if (response.status >= 200 && response.status < 300) {
    return { ok: true, failedIds: await failedIds(response) };
  }
  await response.body?.cancel();
  const retryAfter =
    response.status === 429 || response.status === 503
      ? parseRetryAfter(response.headers.get("retry-after"), now)
      : null;
  return {
    ok: false,
    gone: response.status === 410,
    reason: `HTTP ${response.status}`,
    retryAfterMs: retryAfter,
  };
}

// A 2xx may list the message ids it rejected: {"failed": ["<id>", ...]}. Anything else in the
// body (or no body) means all were accepted.
async function failedIds(response: Response): Promise<Set<string>> {
  const length = Number(response.headers.get("content-length") ?? "0");
  const type = response.headers.get("content-type") ?? "";
  if (!type.includes("json") || length > MAX_REPLY_BYTES) {
    await response.body?.cancel();
    return new Set();
  }
  try {
    const text = await response.text();
    if (text.length > MAX_REPLY_BYTES) return new Set();
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || !("failed" in parsed)) return new Set();
    const failed = (parsed as { failed: unknown }).failed;
    return new Set(Array.isArray(failed) ? failed.filter((x) => typeof x === "string") : []);
  } catch {
    return new Set();
  }
}
