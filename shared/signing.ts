// Standard Webhooks signatures (https://www.standardwebhooks.com), with Web Crypto.
//
// signature = base64(HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")), sent as
// "v1,<signature>"; while a secret rotates, one per active secret, space-separated, so a receiver
// holding either verifies. The key is the base64 after "whsec_". Imported CryptoKeys are cached
// per isolate: importing costs more than signing, and a pass signs many batches with few keys.

const PREFIX = "whsec_";
const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

function importKey(secret: string): Promise<CryptoKey> {
  let key = keys.get(secret);
  if (!key) {
    const raw = Uint8Array.from(atob(secret.slice(PREFIX.length)), (c) => c.charCodeAt(0));
    key = crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return key;
}

function toBase64(bytes: ArrayBuffer): string {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The webhook-signature header value for this message id, timestamp (seconds) and body. */
export async function sign(
  secrets: string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Promise<string> {
  const content = encoder.encode(`${id}.${timestampSeconds}.${body}`);
  const signatures = await Promise.all(
    secrets.map(async (secret) => {
      const mac = await crypto.subtle.sign("HMAC", await importKey(secret), content);
      return `v1,${toBase64(mac)}`;
    }),
  );
  return signatures.join(" ");
}

const B64 = "[A-Za-z0-9+/]";
const QUAD = `${B64}{4}`;
/**
 * A well-formed "whsec_<base64 of 24-64 bytes>" secret, padding optional: 8-20 groups of four
 * (24-60 bytes) and a partial one, or 21 groups (63 bytes) and at most one byte more. A pattern,
 * not a decode, so that the OpenAPI document states the rule (functions/subscription-schemas.ts).
 */
export const SECRET_PATTERN = new RegExp(
  `^${PREFIX}(?:(?:${QUAD}){8,20}(?:${B64}{2}(?:==)?|${B64}{3}=?)?|(?:${QUAD}){21}(?:${B64}{2}(?:==)?)?)$`,
);
