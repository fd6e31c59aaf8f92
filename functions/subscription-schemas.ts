// Request and response schemas of the subscription API (see schemas.ts for the channel ones).

import { z } from "@hono/zod-openapi";
import { SECRET_PATTERN } from "../shared/signing.ts";
import {
  FLOW_KEY,
  MAX_CONCURRENCY_LIMIT,
  MAX_FLOW_PARALLELISM,
  MAX_FLOW_RATE,
  MAX_TIMEOUT_MS,
  MIN_CONCURRENCY,
  SUBSCRIPTION_DEFAULTS,
} from "../shared/subscription.ts";
import {
  CHANNEL_NAME,
  ChannelParams,
  MessageTrace,
  OrderingKeyField,
  STREAM_ID_64,
  StreamId,
} from "./schemas.ts";

const SubscriptionName = z
  .string()
  .regex(CHANNEL_NAME, "must be 1-128 of A-Za-z0-9._- starting with a letter or digit");

export const SubscriptionParams = ChannelParams.extend({
  name: SubscriptionName.openapi({ param: { name: "name", in: "path" }, example: "billing" }),
});

// The pattern states in the document what the protocol option checks.
const WebhookUrl = z
  .url({
    protocol: /^https?$/,
    // Only a push subscription's create requires one; elsewhere a missing url is never checked.
    error: (issue) =>
      issue.input === undefined ? "is required for a push subscription" : "must be an http(s) URL",
  })
  .max(2048)
  .openapi({
    pattern: "^[Hh][Tt][Tt][Pp][Ss]?://",
    example: "https://example.com/webhooks/orders",
  });

const TypePattern = z
  .string()
  .regex(/^[A-Za-z0-9._*-]{1,256}$/, "must be 1-256 of A-Za-z0-9._- with * as a wildcard")
  .openapi({ example: "invoice.*" });

const Types = z
  .array(TypePattern)
  .min(1)
  .max(100)
  .nullable()
  .openapi({ description: "Deliver only these types (`*` matches anything); null: all" });

// Whole requests per second: a slower pace (one every 2 s...) would space POSTs beyond what one
// visit's budget can wait, and pacing across visits would then need the schedule (see docs/delivery.md: Delivery rate per subscription).
const MaxRequestsPerSecond = z.number().int().min(1).max(10_000).nullable().openapi({
  description:
    "At most this many webhook requests start in any second (its deliverer spaces them 1000/n ms apart); null: unlimited",
  example: 50,
});

const MaxConcurrency = z.number().int().min(MIN_CONCURRENCY).max(MAX_CONCURRENCY_LIMIT).openapi({
  description:
    "At most this many webhook requests of this subscription in flight at once; 1: one at a time",
  example: 5,
});

// A flow key: shared by every push subscription naming it, on any channel (docs/delivery.md: Flow
// keys). A create names the key with a rate, a parallelism or both (the document says so:
// flowRules); a PATCH changes them field by field, null removing one (flowKey: null, the key with
// its limits), and what it would leave is checked against what is stored (409 flow_incomplete).
const FlowKey = z.string().regex(FLOW_KEY, "must be 1-256 of A-Za-z0-9._:-").openapi({
  description:
    "Share flowRate and flowParallelism with every push subscription naming the same key, on any channel (1-256 of A-Za-z0-9._:-); given with flowRate, flowParallelism or both",
  example: "api.example.com",
});

const FlowRate = z.number().int().min(1).max(MAX_FLOW_RATE).openapi({
  description:
    "At most this many webhook requests start per second under flowKey, over every subscription naming it (each take is held to the limits of the subscription making it)",
  example: 20,
});

const FlowParallelism = z.number().int().min(1).max(MAX_FLOW_PARALLELISM).openapi({
  description:
    "At most this many webhook requests in flight at once under flowKey, over every subscription naming it",
  example: 2,
});

const flowFields = {
  flowKey: FlowKey.optional(),
  flowRate: FlowRate.optional(),
  flowParallelism: FlowParallelism.optional(),
};

// The create's rule, in the document: a limit needs the key, the key needs a limit (the route
// refuses the same, functions/flow-settings.ts).
const flowRules = {
  dependentRequired: { flowRate: ["flowKey"], flowParallelism: ["flowKey"] },
  dependentSchemas: {
    flowKey: {
      anyOf: [
        { required: ["flowRate"], properties: { flowRate: {} } },
        { required: ["flowParallelism"], properties: { flowParallelism: {} } },
      ],
    },
  },
};

const flowChanges = {
  flowKey: FlowKey.nullable().optional().openapi({
    description:
      "A new flow key (1-256 of A-Za-z0-9._:-), keeping the limits; null removes the key and its limits. The flow it leaves must have a key with flowRate, flowParallelism or both, or none of them (409 flow_incomplete)",
  }),
  flowRate: FlowRate.nullable().optional().openapi({
    description: "Requests per second started under flowKey; null: no rate",
  }),
  flowParallelism: FlowParallelism.nullable().optional().openapi({
    description: "Requests in flight at once under flowKey; null: no bound",
  }),
};

const settings = {
  url: WebhookUrl,
  batchSize: z.number().int().min(1).max(1000),
  maxAttempts: z.number().int().min(1).max(100),
  types: Types,
  timeoutMs: z.number().int().min(100).max(MAX_TIMEOUT_MS),
};

// A calendar-checked ISO-8601 date and time (2026-02-30 and hour 24 are refused; Date.parse alone
// rolls them over into March and the next day), with Z, an offset, or none (UTC in Workers).
const IsoTime = z.iso.datetime({ offset: true, local: true });

/**
 * "latest" | "earliest" | a stream id | an ISO-8601 time up to now: where delivery starts
 * (inclusive). Checked here with a message per kind; the document states the same alternatives
 * (`anyOf`), all but "up to now", which depends on the clock and is said in the description.
 */
const StartPoint = (allowLatest: boolean) =>
  z
    .string()
    .superRefine((v, ctx) => {
      if ((allowLatest && v === "latest") || v === "earliest" || StreamId.safeParse(v).success)
        return;
      if (!IsoTime.safeParse(v).success) {
        const kinds = `${allowLatest ? '"latest", ' : ""}"earliest", a stream id or an ISO-8601 time`;
        ctx.addIssue({ code: "custom", message: `must be ${kinds}` });
      } else if (Date.parse(v) > Date.now()) {
        // Nothing was published after now: a start there would deliver messages published later
        // than asked for, or look like a mistake in the time zone.
        ctx.addIssue({ code: "custom", message: "is in the future; give a time up to now" });
      }
    })
    .openapi({
      anyOf: [
        { type: "string", enum: allowLatest ? ["latest", "earliest"] : ["earliest"] },
        { type: "string", pattern: STREAM_ID_64.source },
        { type: "string", format: "date-time" },
      ],
    });

const secretRule = "must be whsec_ followed by the base64 of 24 to 64 bytes";

/** The settings a push and a pull subscription both take when created. */
const created = {
  name: SubscriptionName,
  from: StartPoint(true).optional().openapi({
    description:
      'Default "latest": new messages only. A time must not be in the future (400: "is in the future")',
  }),
  batchSize: settings.batchSize.optional().openapi({ default: SUBSCRIPTION_DEFAULTS.batchSize }),
  maxAttempts: settings.maxAttempts
    .optional()
    .openapi({ default: SUBSCRIPTION_DEFAULTS.maxAttempts }),
  types: Types.optional(),
  timeoutMs: settings.timeoutMs.optional().openapi({ default: SUBSCRIPTION_DEFAULTS.timeoutMs }),
  maxRequestsPerSecond: MaxRequestsPerSecond.optional(),
  maxConcurrency: MaxConcurrency.optional().openapi({
    default: SUBSCRIPTION_DEFAULTS.maxConcurrency,
  }),
};

const Ordered = z.boolean().openapi({
  description:
    "Push only: deliver the messages of each `orderingKey` in publish order, one request at a time per key; a failed message holds back its key's later ones until it is delivered or dead-lettered. Messages without a key form one more key",
});

const CreatePush = z
  .strictObject({
    mode: z.literal("push").optional().openapi({
      default: "push",
      description: "push (the default): webhooks to `url`",
    }),
    url: settings.url,
    secret: z
      .string()
      .regex(SECRET_PATTERN, secretRule)
      .optional()
      .openapi({ description: "Bring your own signing secret; default: a new random one" }),
    ...created,
    ordered: Ordered.optional().openapi({ default: false }),
    ...flowFields,
  })
  .openapi("CreatePushSubscription", flowRules);

const pullRefusal = (keys: string[]) =>
  keys.includes("url")
    ? "a pull subscription has no url"
    : keys.includes("secret")
      ? "a pull subscription signs nothing"
      : keys.includes("ordered")
        ? "ordered: a pull subscription cannot be ordered (ordering applies to push)"
        : keys.some((k) => k.startsWith("flow"))
          ? "a pull subscription has no flow key: its consumers pull at their own pace"
          : undefined;

const CreatePull = z
  .strictObject(
    {
      mode: z.literal("pull").openapi({ description: "pull: consumers pull (no url, no secret)" }),
      ...created,
    },
    {
      error: (issue) => (issue.code === "unrecognized_keys" ? pullRefusal(issue.keys) : undefined),
    },
  )
  .openapi("CreatePullSubscription");

// Not a discriminatedUnion: `mode` may be left out (push), and an OpenAPI discriminator cannot
// read a property a value may omit. The two shapes still exclude each other: push allows only
// "push" as its mode, pull requires "pull".
export const CreateSubscriptionBody = z
  .union([CreatePush, CreatePull], {
    error: '"mode" must be "push" (the default, with a "url") or "pull"',
  })
  .openapi("CreateSubscription");

export const UpdateSubscriptionBody = z
  .strictObject({
    url: settings.url.optional(),
    batchSize: settings.batchSize.optional(),
    maxAttempts: settings.maxAttempts.optional(),
    types: Types.optional(),
    timeoutMs: settings.timeoutMs.optional(),
    maxRequestsPerSecond: MaxRequestsPerSecond.optional(),
    maxConcurrency: MaxConcurrency.optional(),
    ordered: Ordered.optional(),
    ...flowChanges,
    paused: z.boolean().optional(),
  })
  .refine((body) => Object.keys(body).length > 0, "give at least one field to change")
  // The refine's rule, in the document (zod has no minProperties of its own).
  .openapi("UpdateSubscription", {
    minProperties: 1,
    description:
      "At least one field. `url`, `ordered: true` and the flow fields only on a push subscription (409 not_push_subscription on a pull one)",
  });

export const ReplayBody = z.strictObject({ from: StartPoint(false) }).openapi("Replay");

export const RedriveBody = z
  .strictObject({ ids: z.array(StreamId).min(1).max(1000).optional() })
  .openapi("Redrive");

export const DeadLetterQuery = z.object({
  after: StreamId.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const Subscription = z
  .object({
    id: z.string().nullable().openapi({
      description:
        "Set at creation: a subscription deleted and created again under the same name gets a new one (null for subscriptions created before ids)",
    }),
    name: z.string(),
    channel: z.string(),
    mode: z.enum(["push", "pull"]).openapi({
      description: "push: delivered to `url`; pull: consumers pull it (POST .../pull)",
    }),
    url: z.string().nullable().openapi({ description: "null for a pull subscription" }),
    batchSize: z.number().int(),
    maxAttempts: z.number().int(),
    types: z.array(z.string()).nullable(),
    timeoutMs: z.number().int(),
    maxRequestsPerSecond: MaxRequestsPerSecond,
    maxConcurrency: MaxConcurrency,
    currentConcurrency: z.number().int().nullable().openapi({
      description:
        "Requests it may have in flight now (push; null for pull): adaptive, from 2 up to maxConcurrency. It grows while requests succeed (doubling at first, then by one per window's worth) and is halved on a 429, a 503, a timeout or a connection error",
    }),
    ordered: Ordered,
    heldKeys: z
      .array(
        z
          .object({
            orderingKey: z.string().nullable().openapi({
              description: "null: the messages published without a key",
            }),
            messageId: z.string().openapi({ description: "The failed message they wait behind" }),
            since: z.iso.datetime().openapi({ description: "When it first failed" }),
            waiting: z.number().int().openapi({
              description: "The key's later messages read so far, waiting behind it",
            }),
          })
          .openapi("HeldKey"),
      )
      .openapi({
        description:
          "An ordered subscription's keys held back by a failed message, until it is delivered or dead-lettered (longest held first); empty otherwise",
      }),
    flowKey: FlowKey.nullable().openapi({
      description:
        "The key whose rate and parallelism it shares with every push subscription naming it, on any channel; null: none",
    }),
    flowRate: FlowRate.nullable().openapi({
      description:
        "At most this many requests start per second under flowKey (this subscription's requests are held to it); null: no rate",
    }),
    flowParallelism: FlowParallelism.nullable().openapi({
      description:
        "At most this many requests in flight at once under flowKey, over every subscription naming it; null: no bound",
    }),
    paused: z.boolean(),
    status: z.enum(["active", "paused", "failing", "disabled"]).openapi({
      description:
        "failing: its last request failed; disabled: paused by streamhook after every request failed for DISABLE_AFTER_MS (not deleted; PATCH {paused: false} brings it back)",
    }),
    nextAttemptAt: z.iso.datetime().nullable().openapi({
      description:
        "When it is next due (a retry's time, or now when messages wait); null when nothing is scheduled or it is paused",
    }),
    failingSince: z.iso.datetime().nullable(),
    disabledAt: z.iso.datetime().nullable(),
    disabledReason: z.string().nullable(),
    createdAt: z.iso.datetime(),
    lag: z.number().int().nullable().openapi({ description: "Messages not yet delivered" }),
    pending: z.number().int().openapi({ description: "Delivered, awaiting ack or retry" }),
    lastDeliveredId: z.string().nullable(),
    deadLetters: z.number().int().openapi({ description: "Dead letters kept now" }),
    deadLettersExpired: z.number().int().openapi({
      description:
        "Dead letters trimmed because they were older than DEAD_LETTER_MAX_AGE_MS, since the subscription was created",
    }),
    deadLettersDropped: z.number().int().openapi({
      description:
        "Dead letters trimmed, oldest first, to keep at most DEAD_LETTER_MAX_MESSAGES and DEAD_LETTER_MAX_BYTES, since the subscription was created (not counted in deadLettersExpired)",
    }),
    consecutiveFailures: z.number().int(),
    lastError: z.string().nullable(),
    lastErrorAt: z.iso.datetime().nullable(),
    lastSuccessAt: z.iso.datetime().nullable(),
    expired: z.number().int().openapi({
      description:
        "Messages trimmed before this subscription acknowledged them, because it fell further behind than MAX_UNDELIVERED_AGE_MS",
    }),
    lastExpiredAt: z.iso.datetime().nullable(),
  })
  .openapi("Subscription");

export const Replaying = Subscription.extend({
  replayFrom: z.string().nullable().openapi({
    description:
      "The id of the first message the replay delivers: the oldest the channel keeps when `from` lies before it (retention trimmed the rest); null when there is none yet",
  }),
}).openapi("Replaying");

export const SubscriptionWithSecret = Subscription.extend({
  secret: z.string().optional().openapi({
    description: "whsec_...: shown only on create and rotation (a pull subscription has none)",
  }),
}).openapi("SubscriptionWithSecret");

export const DeadLetter = z
  .object({
    id: z.string(),
    type: z.string().nullable(),
    data: z.unknown(),
    publishedAt: z.iso.datetime(),
    attempts: z.number().int(),
    lastError: z.string(),
    deadAt: z.iso.datetime(),
    ...MessageTrace,
    ...OrderingKeyField,
  })
  .openapi("DeadLetter");

export const DeadLetterPage = z
  .object({
    messages: z.array(DeadLetter),
    next: z.string().nullable(),
    expired: z.number().int().openapi({
      description:
        "Dead letters of this subscription trimmed for age (DEAD_LETTER_MAX_AGE_MS) so far: its deadLettersExpired",
    }),
    dropped: z.number().int().openapi({
      description:
        "Dead letters of this subscription trimmed for count or bytes (DEAD_LETTER_MAX_MESSAGES, DEAD_LETTER_MAX_BYTES) so far, oldest first: its deadLettersDropped",
    }),
  })
  .openapi("DeadLetterPage");

const Counts = {
  delivered: z.number().int(),
  retried: z.number().int(),
  deadLettered: z.number().int(),
  filtered: z.number().int(),
};

export const PassSummary = z
  .object({
    startedAt: z.iso.datetime(),
    durationMs: z.number().int(),
    ...Counts,
    subscriptions: z.array(
      z.object({
        channel: z.string(),
        subscription: z.string(),
        ...Counts,
        error: z.string().optional(),
      }),
    ),
  })
  .openapi("PassSummary");
