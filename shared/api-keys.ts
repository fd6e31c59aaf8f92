// Scoped API keys: what a key may do (scopes), where (channel patterns), and how often (an
// optional rate limit, shared/rate-limit.ts).
//
// A key's secret ("sk_" + 32 random bytes, base64url) is shown once, when the key is made, and
// stored only as its SHA-256 (Web Crypto, as in Workers). {p}:apikeys is a HASH from that hash to
// the key's JSON (keys.ts), so authenticating a request is one HGET by the hash of the token it
// bears: no secret is ever compared here, Redis finds the field by its hash. A secret has 256
// random bits, so an unsalted fast hash is enough (nobody guesses a preimage of 2^256).
//
// No cache: every request reads its key, so a deleted key is refused by the next request, in
// every isolate at once, for 1 command.
//
// Keys are few (people make them by hand): listing and deleting read the whole hash (HGETALL).

import type { Db } from "./redis.ts";
import { asFields, asOptionalString } from "./redis.ts";
import { generateId, matchesTypes } from "./subscription.ts";

export const SCOPES = ["publish", "read", "subscribe", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export interface RateLimit {
  /** Requests allowed per window. */
  requests: number;
  /** The window, in ms (a fixed window: the count starts again at each multiple of it). */
  windowMs: number;
}

export interface ApiKey {
  /** "key_" + 16 base-32 characters; names the key in the API, never authenticates. */
  id: string;
  name: string;
  scopes: Scope[];
  /** Channel patterns, `*` matching anything (as subscription types do); ["*"]: all channels. */
  channels: string[];
  rateLimit: RateLimit | null;
  createdAt: string;
}

export type NewApiKey = Omit<ApiKey, "id" | "createdAt">;

/** Who made a request: the root API_TOKEN (every scope, every channel, no rate limit) or a key. */
export type Principal = { kind: "root" } | { kind: "key"; key: ApiKey };

/** Does the principal hold this scope? `admin` holds every scope. */
export function hasScope(principal: Principal, scope: Scope): boolean {
  if (principal.kind === "root") return true;
  return principal.key.scopes.includes("admin") || principal.key.scopes.includes(scope);
}

/** May the principal touch this channel? */
export function canSee(principal: Principal, channel: string): boolean {
  return principal.kind === "root" || matchesTypes(principal.key.channels, channel);
}

/** Is the principal limited to some channels? Routes that reach every channel refuse it then. */
export function allChannels(principal: Principal): boolean {
  return principal.kind === "root" || principal.key.channels.includes("*");
}

const SECRET_PREFIX = "sk_";

/** A new secret: "sk_" + base64url of 32 random bytes (256 bits). */
export function generateKeySecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const base64 = btoa(String.fromCharCode(...bytes));
  return SECRET_PREFIX + base64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The field a secret is stored under: SHA-256 of its UTF-8 bytes, lowercase hex. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Makes a key; returns it and its secret, which is not stored and cannot be shown again. */
export async function createApiKey(
  db: Db,
  input: NewApiKey,
  now: number,
): Promise<{ key: ApiKey; secret: string }> {
  const secret = generateKeySecret();
  const key: ApiKey = {
    id: `key_${generateId()}`,
    ...input,
    createdAt: new Date(now).toISOString(),
  };
  // HSET, not HSETNX: the field is the hash of 256 fresh random bits, so it is new, and a repeat
  // after a lost reply writes the same value again (safe on db.redis).
  await db.redis.hset(db.keys.apiKeys(), { [await hashSecret(secret)]: JSON.stringify(key) });
  return { key, secret };
}

/**
 * The key a bearer token names, or null: 1 HGET. Tokens that are not "sk_..." cost nothing.
 */
export async function findApiKey(db: Db, token: string): Promise<ApiKey | null> {
  if (!token.startsWith(SECRET_PREFIX)) return null;
  const json = asOptionalString(await db.redis.hget(db.keys.apiKeys(), await hashSecret(token)));
  return json === null ? null : (JSON.parse(json) as ApiKey);
}

/** Every key, oldest first (then by id). */
export async function listApiKeys(db: Db): Promise<ApiKey[]> {
  const keys = (await readAll(db)).map(([, key]) => key);
  return keys.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
}

/**
 * Deletes a key: false if there is none with this id. Found means deleted, whatever HDEL counts:
 * a repeat after a lost reply deletes nothing the second time.
 */
export async function deleteApiKey(db: Db, id: string): Promise<boolean> {
  const fields = (await readAll(db)).filter(([, key]) => key.id === id).map(([field]) => field);
  if (fields.length === 0) return false;
  await db.redis.hdel(db.keys.apiKeys(), ...fields);
  return true;
}

async function readAll(db: Db): Promise<[string, ApiKey][]> {
  const fields = asFields(await db.redis.hgetall(db.keys.apiKeys()));
  return Object.entries(fields).map(([field, json]) => [field, JSON.parse(json) as ApiKey]);
}
