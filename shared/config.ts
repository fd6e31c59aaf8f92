// Configuration, typed once. `Env` is the Worker's raw bindings (every value a string, as
// `wrangler types` writes them); `Config` is what the code wants (numbers as numbers, durations in
// ms). `loadConfig` validates, applies defaults and throws naming the variable; below the entry
// points nothing reads `env`.
//
// The configuration table in docs/operations.md lists exactly these variables; `npm run dev`
// passes any of them that is set in its environment through to the Worker (see CONFIG_VARIABLES).

import { z } from "zod";

/**
 * A Queues producer binding, as far as streamhook uses it (the runtime's `Queue` has this method;
 * declared here so that code built for Node, the tests, can name it too).
 */
export interface QueueBinding {
  sendBatch(messages: Iterable<{ body: unknown; delaySeconds?: number }>): Promise<unknown>;
}

export interface Env {
  /**
   * The delivery queue (wrangler.toml's [[queues.producers]]): a binding, not a variable. Bound,
   * work that cannot finish in one invocation is handed to it; unbound, the cron picks it up.
   */
  DELIVERY_QUEUE?: QueueBinding;
  UPSTASH_REDIS_REST_URL: string;
  UPSTASH_REDIS_REST_TOKEN: string;
  API_TOKEN: string;
  KEY_PREFIX?: string;
  MAX_MESSAGE_BYTES?: string;
  MAX_BATCH_BYTES?: string;
  RETRY_BASE_MS?: string;
  RETRY_MAX_MS?: string;
  PASS_BUDGET_MS?: string;
  PASS_MAX_SUBREQUESTS?: string;
  PASS_CONCURRENCY?: string;
  PASS_MAX_SUBSCRIPTIONS?: string;
  KICK_ON_PUBLISH?: string;
  RETENTION_MAX_AGE_MS?: string;
  RETENTION_MAX_MESSAGES?: string;
  MAX_UNDELIVERED_AGE_MS?: string;
  TRIM_MIN_INTERVAL_MS?: string;
  DEAD_LETTER_MAX_AGE_MS?: string;
  DEAD_LETTER_MAX_MESSAGES?: string;
  DEAD_LETTER_MAX_BYTES?: string;
  DISABLE_AFTER_MS?: string;
  PULL_LOOK_EVERY_MS?: string;
  EVENTS_CHANNEL?: string;
  ALLOW_HTTP_WEBHOOKS?: string;
  ALLOW_PRIVATE_WEBHOOKS?: string;
}

/** Which webhook URLs subscriptions may have (shared/webhook-target.ts). Both off in production. */
export interface WebhookTargetPolicy {
  /** Accept http:// URLs, not only https://; default false (`npm run dev` and tests: true). */
  allowHttp: boolean;
  /** Accept loopback, private, link-local, metadata and localhost hosts; default false (dev: true). */
  allowPrivate: boolean;
}

/** How long channels keep messages (lua/trim.ts); a channel's own retention overrides the first two. */
export interface RetentionConfig {
  /** Messages older than this may be trimmed; null: no age limit. Default 7 days. */
  maxAgeMs: number | null;
  /** The newest this many are kept; null: no count limit (the default). */
  maxMessages: number | null;
  /** A subscription further behind than this loses its oldest messages (counted). 14 days. */
  maxUndeliveredAgeMs: number;
  /** The least time between two trims of one channel; default 1 s. */
  trimMinIntervalMs: number;
}

export interface Config {
  /** Upstash REST endpoint (or the local bridge). */
  redisUrl: string;
  /** Upstash REST token. */
  redisToken: string;
  /** Bearer token every API route but /health requires. */
  apiToken: string;
  /** Versioned prefix of every Redis key; default "sh:v1". */
  keyPrefix: string;
  /** Largest `data` of one message, as UTF-8 JSON bytes; default 256 KiB. */
  maxMessageBytes: number;
  /** Largest webhook body a batch may make, in bytes; default 1 MiB (one message may exceed it). */
  maxBatchBytes: number;
  /** First retry delay in ms, doubled per attempt, with jitter; default 30 s. */
  retryBaseMs: number;
  /** Longest retry delay in ms (also caps Retry-After); default 6 h, at most 12 h. */
  retryMaxMs: number;
  /** A delivery pass starts no new batch after this many ms; default 20 s (waitUntil ends ~30 s). */
  passBudgetMs: number;
  /** Subrequests (Redis calls + webhook POSTs) one pass may make; default 5,000 (paid plan). */
  passMaxSubrequests: number;
  /** Subscriptions delivered at once in a pass; default 6 (Workers' open-connection limit). */
  passConcurrency: number;
  /** Subscriptions one pass picks up; default 200, the rest wait for the next pass. */
  passMaxSubscriptions: number;
  /** Start a delivery for the channel right after a publish (ctx.waitUntil); default true. */
  kickOnPublish: boolean;
  /** Channel retention defaults and trimming (lua/trim.ts). */
  retention: RetentionConfig;
  /** Dead letters older than this (ms since they died) are trimmed, and counted; default 14 days. */
  deadLetterMaxAgeMs: number;
  /** Dead letters kept per subscription, the oldest trimmed (and counted); default 10,000. */
  deadLetterMaxMessages: number;
  /** Bytes of dead letters kept per subscription, the oldest trimmed (and counted); 64 MiB. */
  deadLetterMaxBytes: number;
  /** A subscription whose every request failed for this long is disabled; default 5 days. */
  disableAfterMs: number;
  /** An isolate's pulls look for leases that ran out at most this often, in ms; default 1 s. */
  pullLookEveryMs: number;
  /** Where streamhook publishes its own events (subscription.*, message.dead_lettered); null: none. */
  eventsChannel: string | null;
  /** Which webhook URLs are accepted on create and PATCH; default: public https only. */
  webhookTargets: WebhookTargetPolicy;
}

/** The Worker's configuration variables, for `npm run dev` pass-through and the docs test. */
export const CONFIG_VARIABLES = [
  "UPSTASH_REDIS_REST_URL",
  "UPSTASH_REDIS_REST_TOKEN",
  "API_TOKEN",
  "KEY_PREFIX",
  "MAX_MESSAGE_BYTES",
  "MAX_BATCH_BYTES",
  "RETRY_BASE_MS",
  "RETRY_MAX_MS",
  "PASS_BUDGET_MS",
  "PASS_MAX_SUBREQUESTS",
  "PASS_CONCURRENCY",
  "PASS_MAX_SUBSCRIPTIONS",
  "KICK_ON_PUBLISH",
  "RETENTION_MAX_AGE_MS",
  "RETENTION_MAX_MESSAGES",
  "MAX_UNDELIVERED_AGE_MS",
  "TRIM_MIN_INTERVAL_MS",
  "DEAD_LETTER_MAX_AGE_MS",
  "DEAD_LETTER_MAX_MESSAGES",
  "DEAD_LETTER_MAX_BYTES",
  "DISABLE_AFTER_MS",
  "PULL_LOOK_EVERY_MS",
  "EVENTS_CHANNEL",
  "ALLOW_HTTP_WEBHOOKS",
  "ALLOW_PRIVATE_WEBHOOKS",
] as const satisfies readonly (keyof Env)[];

const DAY_MS = 86_400_000;
const MIB = 1024 * 1024;

const integer = (fallback: number, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .optional()
    .transform((value) => value ?? fallback);

/** A whole number, or "none" (null: no limit). */
const limit = (fallback: number | null, min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^(\d+|none)$/, 'must be a whole number or "none"')
    .transform((value) => (value === "none" ? null : Number(value)))
    .pipe(z.number().int().min(min).max(max).nullable())
    .optional()
    .transform((value) => (value === undefined ? fallback : value));

/** A switch: 1 or true turns it on, 0 or false off (any case); unset: off. */
const flag = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.enum(["1", "true", "0", "false"], { error: "must be 1, true, 0 or false" }))
  .optional()
  .transform((value) => value === "1" || value === "true");

const required = z.string({ error: "is required" }).trim().min(1, "is required");

const schema = z.object({
  UPSTASH_REDIS_REST_URL: required.pipe(z.url({ protocol: /^https?$/ })),
  UPSTASH_REDIS_REST_TOKEN: required,
  // The characters a bearer token may hold (RFC 6750 b64token), so a valid token is always sendable.
  API_TOKEN: required.pipe(z.string().regex(/^[A-Za-z0-9._~+/-]+=*$/, "must be an RFC 6750 token")),
  KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, "must be 1-64 of A-Za-z0-9._:-")
    .optional()
    .transform((value) => value ?? "sh:v1"),
  MAX_MESSAGE_BYTES: integer(256 * 1024, 1, 1024 * 1024),
  MAX_BATCH_BYTES: integer(1024 * 1024, 1024, 8 * 1024 * 1024),
  RETRY_BASE_MS: integer(30_000, 1, 12 * 3_600_000),
  // At most 12 h: a message waits for its retry in its group's pending list, made visible again
  // after its delay (shared/engine/queue.ts: MAX_VISIBILITY_MS), as a queue task can be delayed.
  RETRY_MAX_MS: integer(6 * 3_600_000, 1, 12 * 3_600_000),
  PASS_BUDGET_MS: integer(20_000, 100, 15 * 60_000),
  PASS_MAX_SUBREQUESTS: integer(5_000, 10, 1_000_000),
  PASS_CONCURRENCY: integer(6, 1, 64),
  PASS_MAX_SUBSCRIPTIONS: integer(200, 1, 10_000),
  RETENTION_MAX_AGE_MS: limit(7 * DAY_MS, 1000, 3650 * DAY_MS),
  RETENTION_MAX_MESSAGES: limit(null, 1, 1_000_000_000),
  MAX_UNDELIVERED_AGE_MS: integer(14 * DAY_MS, 1000, 3650 * DAY_MS),
  TRIM_MIN_INTERVAL_MS: integer(1000, 0, 3_600_000),
  KICK_ON_PUBLISH: z
    .enum(["true", "false"], { error: 'must be "true" or "false"' })
    .optional()
    .transform((value) => value !== "false"),
  // At least a minute: the cutoff is the Worker's clock, the time of death Redis's.
  DEAD_LETTER_MAX_AGE_MS: integer(14 * DAY_MS, 60_000, 3650 * DAY_MS),
  DEAD_LETTER_MAX_MESSAGES: integer(10_000, 1, 10_000_000),
  // A subscription's dead letters are one Redis record: the default stays well under Upstash's
  // 100 MB max record size, past which it refuses to park more (they would stay pending).
  DEAD_LETTER_MAX_BYTES: integer(64 * MIB, 1024, 64 * 1024 * MIB),
  DISABLE_AFTER_MS: integer(5 * DAY_MS, 1000, 3650 * DAY_MS),
  // At most an hour: a lease that ran out waits for a look that long at worst.
  PULL_LOOK_EVERY_MS: integer(1000, 0, 3_600_000),
  EVENTS_CHANNEL: z
    .string()
    .trim()
    .regex(/^(none|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$/, 'must be a channel name or "none"')
    .optional()
    .transform((value) => (value === "none" ? null : (value ?? "streamhook.events"))),
  ALLOW_HTTP_WEBHOOKS: flag,
  ALLOW_PRIVATE_WEBHOOKS: flag,
});

/** Thrown at start-up when a variable is missing or malformed; names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

const cache = new WeakMap<object, Config>();

/** Validates the bindings once per isolate (cached by the env object) and returns the config. */
export function loadConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const parsed = schema.safeParse(pickStrings(env));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join("; ")}`);
  }
  const v = parsed.data;
  if (v.RETRY_MAX_MS < v.RETRY_BASE_MS) {
    throw new ConfigError("invalid configuration: RETRY_MAX_MS must be >= RETRY_BASE_MS");
  }
  const config: Config = {
    redisUrl: v.UPSTASH_REDIS_REST_URL,
    redisToken: v.UPSTASH_REDIS_REST_TOKEN,
    apiToken: v.API_TOKEN,
    keyPrefix: v.KEY_PREFIX,
    maxMessageBytes: v.MAX_MESSAGE_BYTES,
    maxBatchBytes: v.MAX_BATCH_BYTES,
    retryBaseMs: v.RETRY_BASE_MS,
    retryMaxMs: v.RETRY_MAX_MS,
    passBudgetMs: v.PASS_BUDGET_MS,
    passMaxSubrequests: v.PASS_MAX_SUBREQUESTS,
    passConcurrency: v.PASS_CONCURRENCY,
    passMaxSubscriptions: v.PASS_MAX_SUBSCRIPTIONS,
    kickOnPublish: v.KICK_ON_PUBLISH,
    retention: {
      maxAgeMs: v.RETENTION_MAX_AGE_MS,
      maxMessages: v.RETENTION_MAX_MESSAGES,
      maxUndeliveredAgeMs: v.MAX_UNDELIVERED_AGE_MS,
      trimMinIntervalMs: v.TRIM_MIN_INTERVAL_MS,
    },
    deadLetterMaxAgeMs: v.DEAD_LETTER_MAX_AGE_MS,
    deadLetterMaxMessages: v.DEAD_LETTER_MAX_MESSAGES,
    deadLetterMaxBytes: v.DEAD_LETTER_MAX_BYTES,
    disableAfterMs: v.DISABLE_AFTER_MS,
    pullLookEveryMs: v.PULL_LOOK_EVERY_MS,
    eventsChannel: v.EVENTS_CHANNEL,
    webhookTargets: {
      allowHttp: v.ALLOW_HTTP_WEBHOOKS,
      allowPrivate: v.ALLOW_PRIVATE_WEBHOOKS,
    },
  };
  cache.set(env, config);
  return config;
}

// Empty strings count as unset, so `FOO=` in a shell or a blank wrangler var means "default".
function pickStrings(env: Env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of CONFIG_VARIABLES) {
    const value = env[name];
    if (typeof value === "string" && value.trim() !== "") out[name] = value;
  }
  return out;
}
