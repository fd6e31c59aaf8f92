// A subscription as stored and as the code uses it.
//
// Stored as JSON in {p}:subs:<ch> under its name; "paused" lives apart in the <name>#paused field
// (see keys.ts), so the publish script can skip paused subscribers without decoding JSON, and the
// worker can pause one on 410 Gone without rewriting (and racing) the JSON.
//
// Identity. A name can be deleted and taken again; a delivery still running for the old one must
// not mistake the new one for its own. So each subscription gets a random `id` at creation, and
// its consumer group is named after it (`<name>~<id>`, see keys.ts): a stale deliverer's reads and
// claims then find no group (NOGROUP) instead of the new subscription's messages. Subscriptions
// stored before identities existed have no id; their group keeps the plain name.

export interface SigningSecret {
  /** "whsec_" + base64 of the key bytes (Standard Webhooks). */
  secret: string;
  /** When a rotated-out secret stops signing (ms); null for the current one. */
  expiresAt: number | null;
}

/** push: streamhook POSTs batches to `url`; pull: consumers take them (functions/pull.ts). */
export type SubscriptionMode = "push" | "pull";

export interface SubscriptionSettings {
  /** The webhook; "" for a pull subscription. */
  url: string;
  batchSize: number;
  maxAttempts: number;
  /** Type patterns ("order.created", "invoice.*"); null = every message. */
  types: string[] | null;
  timeoutMs: number;
  /**
   * At most this many webhook POSTs start in any second (1-10,000); null = unlimited. Its
   * deliverers space POSTs 1000/rps ms apart (lua/take.ts: pace slots, over every invocation);
   * absent in JSON stored before it.
   */
  maxRequestsPerSecond: number | null;
  /**
   * At most this many of its webhook requests in flight at once (MIN_CONCURRENCY to
   * MAX_CONCURRENCY_LIMIT); 1 sends one at a time. Absent in JSON stored before it: the default.
   */
  maxConcurrency: number;
  /**
   * Push only: the messages of one ordering key are delivered in publish order, one request at a
   * time (keyless ones as one more key), by the take script's lanes (lua/take.ts). Absent in JSON
   * unless true.
   */
  ordered: boolean;
  /** The flow key it shares a rate and a parallelism under, with its limits; null: none. */
  flow: Flow | null;
}

/**
 * A flow key and the limits one subscription states for it. Every subscription naming the key,
 * on any channel, counts against one shared state in Redis ({p}:flow:<key>, lua/take.ts: flow):
 * each take is held to the limits of the subscription making it, counted against everything in
 * flight and reserved under the key by all of them. Give the same limits to all of them.
 */
export interface Flow {
  /** 1-256 of A-Za-z0-9._:- (FLOW_KEY): a customer's endpoint host, say. */
  key: string;
  /** At most this many requests start under the key per second; null: no rate. */
  rate: number | null;
  /** At most this many requests in flight under the key at once; null: no bound. */
  parallelism: number | null;
}

/** What a flow key may be: a host, a host:port, a customer's id. */
export const FLOW_KEY = /^[A-Za-z0-9._:-]{1,256}$/;
/** Bounds of flowRate (requests per second) and flowParallelism (requests in flight). */
export const MAX_FLOW_RATE = 10_000;
export const MAX_FLOW_PARALLELISM = 1000;

export interface Subscription extends SubscriptionSettings {
  mode: SubscriptionMode;
  channel: string;
  name: string;
  /** Random, set at creation; "" for subscriptions stored before identities existed. */
  id: string;
  /** Its consumer group's name on the channel stream (and on its redrive stream). */
  group: string;
  /** Newest first. */
  secrets: SigningSecret[];
  paused: boolean;
  createdAt: string;
}

/** Bounds and default of `maxConcurrency`: requests of one subscription in flight at once. */
export const MIN_CONCURRENCY = 1;
export const MAX_CONCURRENCY_LIMIT = 100;
export const DEFAULT_MAX_CONCURRENCY = 25;

/**
 * Where a push subscription's window of requests in flight starts (adaptive concurrency,
 * lua/take.ts: window): it doubles with each window's worth of successes until its first
 * congestion, so a fast endpoint is at maxConcurrency within a few round trips.
 */
export const START_CONCURRENCY = 2;

/**
 * The requests a push subscription's window allows in flight, from its stored number (null:
 * never moved, at its start); within 1 and maxConcurrency.
 */
export const windowOf = (stored: number | null, maxConcurrency: number) =>
  Math.max(1, Math.min(maxConcurrency, Math.floor(stored ?? START_CONCURRENCY)));

export const SUBSCRIPTION_DEFAULTS = {
  batchSize: 10,
  maxAttempts: 15,
  timeoutMs: 10_000,
  maxConcurrency: DEFAULT_MAX_CONCURRENCY,
} as const;

/** Longest webhook timeout a subscription may ask for; the lease is sized from it. */
export const MAX_TIMEOUT_MS = 30_000;

interface StoredSubscription
  extends Omit<
    SubscriptionSettings,
    "maxRequestsPerSecond" | "maxConcurrency" | "ordered" | "flow"
  > {
  /** Absent on subscriptions stored before identities existed. */
  id?: string;
  /** Absent on subscriptions stored before rate limits existed: unlimited. */
  maxRequestsPerSecond?: number | null;
  /** Absent on subscriptions stored before concurrent delivery existed: the default. */
  maxConcurrency?: number;
  /** Absent without a flow key (and on subscriptions stored before flow keys existed). */
  flow?: Flow;
  /** Absent on push subscriptions (all of them, before pull existed). */
  mode?: "pull";
  /** Absent unless ordered. */
  ordered?: true;
  secrets: SigningSecret[];
  createdAt: string;
}

export function serializeSubscription(sub: Subscription): string {
  const stored: StoredSubscription = {
    ...(sub.id === "" ? {} : { id: sub.id }),
    ...(sub.mode === "pull" ? { mode: "pull" as const } : {}),
    url: sub.url,
    batchSize: sub.batchSize,
    maxAttempts: sub.maxAttempts,
    types: sub.types,
    timeoutMs: sub.timeoutMs,
    maxRequestsPerSecond: sub.maxRequestsPerSecond,
    maxConcurrency: sub.maxConcurrency,
    ...(sub.ordered ? { ordered: true as const } : {}),
    ...(sub.flow === null ? {} : { flow: sub.flow }),
    secrets: sub.secrets,
    createdAt: sub.createdAt,
  };
  return JSON.stringify(stored);
}

export function parseSubscription(
  channel: string,
  name: string,
  json: string,
  paused: boolean,
): Subscription {
  const {
    id = "",
    maxRequestsPerSecond = null,
    maxConcurrency = SUBSCRIPTION_DEFAULTS.maxConcurrency,
    mode = "push",
    ordered = false,
    flow = null,
    ...stored
  } = JSON.parse(json) as StoredSubscription;
  const group = groupName(name, id);
  return {
    ...stored,
    maxRequestsPerSecond,
    maxConcurrency,
    ordered,
    flow,
    mode,
    channel,
    name,
    id,
    group,
    paused,
  };
}

/** The consumer group of a subscription: see the header and keys.ts. */
export const groupName = (name: string, id: string) => (id === "" ? name : `${name}~${id}`);

/** A new subscription id: 16 lowercase base-32 characters (80 random bits). */
export function generateId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => alphabet[b % 32]).join("");
}

/** The secrets that sign now: the current one and rotated-out ones still in their grace period. */
export function signingSecrets(sub: Subscription, now: number): string[] {
  return sub.secrets.filter((s) => s.expiresAt === null || s.expiresAt > now).map((s) => s.secret);
}

/** Does a message of this type pass the subscription's filter? `*` matches any run of chars. */
export function matchesTypes(types: string[] | null, type: string | null): boolean {
  if (types === null) return true;
  if (type === null) return false;
  return types.some((pattern) => globToRegExp(pattern).test(type));
}

const patterns = new Map<string, RegExp>();

function globToRegExp(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (!re) {
    const source = pattern
      .split("*")
      .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*");
    re = new RegExp(`^${source}$`);
    patterns.set(pattern, re);
  }
  return re;
}

/** A new Standard Webhooks secret: "whsec_" + base64 of 24 random bytes (as Svix issues). */
export function generateSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}
