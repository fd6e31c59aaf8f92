// The receiver's side: check that a request came from streamhook, read its batch, and answer.
//
// Standard Webhooks (https://www.standardwebhooks.com), as shared/signing.ts signs: the signature
// is base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<raw body>")), sent as
// "v1,<signature>", one per active secret, space-separated while a secret rotates. The key is the
// base64 after "whsec_".
//
// Written on Web Crypto rather than on the `standardwebhooks` package (a devDependency here, which
// the tests check this against): that package signs with a bundled JavaScript SHA-256 and
// base64 library and its verify() takes only one secret, while crypto.subtle is built into Node
// (>= 20), Workers and Deno, so a receiver gets nothing to install and can hold both secrets while
// one rotates. What it takes from it: the 5-minute tolerance both ways, and a comparison whose
// time does not depend on where the bytes differ.

import type { components } from "./schema.d.ts";

export type WebhookBatch = components["schemas"]["WebhookBatch"];
export type WebhookMessage = components["schemas"]["WebhookMessage"];
export type WebhookAnswer = components["schemas"]["WebhookAnswer"];

/** Request headers: a Headers, or a plain object such as Node's IncomingHttpHeaders. */
export type HeadersLike = Headers | Record<string, string | string[] | undefined>;

export interface VerifyOptions {
  /** How far webhook-timestamp may be from now, either way; default 300 (5 minutes). */
  toleranceSeconds?: number;
  /** Now in ms; default Date.now(). */
  now?: number;
}

/** The request is not a genuine, fresh delivery: answer it 401 (or 400) and do nothing else. */
export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
}

const PREFIX = "whsec_";
const encoder = new TextEncoder();

/**
 * The batch of a webhook request, after checking its signature over the raw body with any of
 * `secrets` (during a rotation, pass both) and that its timestamp is within the tolerance.
 * Throws WebhookVerificationError otherwise. Pass the body exactly as received, before any JSON
 * parsing: one byte changed fails the check.
 */
export async function verifyWebhook(
  secrets: string | readonly string[],
  headers: HeadersLike,
  rawBody: string | ArrayBuffer | Uint8Array,
  options: VerifyOptions = {},
): Promise<WebhookBatch> {
  const id = header(headers, "webhook-id");
  const timestamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (id === null || timestamp === null || signatures === null) {
    throw new WebhookVerificationError(
      "missing webhook-id, webhook-timestamp or webhook-signature",
    );
  }
  checkTimestamp(timestamp, options);

  const body = typeof rawBody === "string" ? encoder.encode(rawBody) : new Uint8Array(rawBody);
  const signed = concat(encoder.encode(`${id}.${timestamp}.`), body);
  const offered = signatures
    .split(" ")
    .filter((s) => s.startsWith("v1,"))
    .map((s) => fromBase64(s.slice(3)))
    .filter((s) => s !== null);
  for (const secret of typeof secrets === "string" ? [secrets] : secrets) {
    const expected = new Uint8Array(await crypto.subtle.sign("HMAC", await keyOf(secret), signed));
    if (offered.some((signature) => equalInConstantTime(expected, signature))) {
      return JSON.parse(new TextDecoder().decode(body)) as WebhookBatch;
    }
  }
  throw new WebhookVerificationError("no signature matches the secret");
}

/**
 * The answer to a webhook request: 204 (every message accepted), or with `failed`, 200
 * {"failed": [ids]}: those are retried later, the rest are acknowledged.
 */
export function respond(answer: { failed?: readonly (string | { id: string })[] } = {}): Response {
  const failed = (answer.failed ?? []).map((m) => (typeof m === "string" ? m : m.id));
  if (failed.length === 0) return new Response(null, { status: 204 });
  return Response.json({ failed } satisfies WebhookAnswer);
}

function header(headers: HeadersLike, name: string): string | null {
  if (headers instanceof Headers) return headers.get(name);
  // Header names are case-insensitive: a plain object may say Webhook-Id (a Lambda event).
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : headers[key];
  return Array.isArray(value) ? value.join(" ") : (value ?? null);
}

function checkTimestamp(value: string, options: VerifyOptions): void {
  if (!/^\d{1,15}$/.test(value)) throw new WebhookVerificationError("invalid webhook-timestamp");
  const now = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? 300;
  // A NaN would make both comparisons false and accept any timestamp: replays would verify.
  if (!Number.isFinite(now) || !Number.isFinite(tolerance) || tolerance < 0) {
    throw new TypeError("toleranceSeconds must be a number >= 0, and now a time in ms");
  }
  const seconds = Number(value);
  if (seconds < now - tolerance) throw new WebhookVerificationError("webhook-timestamp too old");
  if (seconds > now + tolerance) throw new WebhookVerificationError("webhook-timestamp too new");
}

// Importing a key costs more than one HMAC; a receiver verifies with the same few secrets.
const keys = new Map<string, Promise<CryptoKey>>();
const MAX_KEYS = 100;

function keyOf(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    const raw = fromBase64(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret);
    if (raw === null || raw.length === 0) throw new TypeError("a secret is whsec_ + base64");
    if (keys.size >= MAX_KEYS) keys.clear();
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

/** True when both hold the same bytes; its time depends on the lengths only. */
function equalInConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  let differ = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) differ |= a[i]! ^ (b[i] ?? 0);
  return differ === 0;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
