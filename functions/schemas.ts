// Request and response schemas. Declared once with @hono/zod-openapi's `z`, they validate requests
// and generate /openapi.json, so the document cannot drift from what the API accepts.

import { z } from "@hono/zod-openapi";
import { MAX_DELAY_MS } from "../shared/delayed.ts";

export const CHANNEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// A stream id is two unsigned 64-bit numbers, and Redis answers an id it cannot parse with an
// error (a 500 here) instead of reading nothing: so the pattern itself holds each part to 64 bits,
// and the document says so (STREAM_ID only tells "not an id" from "too large" in the message).
const MAX_ID_PART = "18446744073709551615"; // 2^64 - 1
const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const PART = atMost(MAX_ID_PART);
export const STREAM_ID_64 = new RegExp(`^${PART}-${PART}$`);

/**
 * A regex source for the decimal numbers (leading zeros allowed) of at most max's digits that
 * are at most `max`: any shorter number, or one that follows max's digits to a position and is
 * smaller there. A JSON Schema pattern cannot compare numbers, so the range is spelled out.
 */
function atMost(max: string): string {
  const n = max.length;
  const smaller = [...max].flatMap((digit, i) => {
    const rest = n - 1 - i;
    const below = digit === "1" ? "0" : `[0-${Number(digit) - 1}]`;
    const tail = rest === 0 ? "" : rest === 1 ? "\\d" : `\\d{${rest}}`;
    return digit === "0" ? [] : [`${max.slice(0, i)}${below}${tail}`];
  });
  return `(?:\\d{1,${n - 1}}|${smaller.join("|")}|${max})`;
}

const NOT_AN_ID = "must be a stream id like 1712345678901-0";
const TOO_LARGE = `must be a stream id whose parts are each at most ${MAX_ID_PART}`;
const idProblem = (id: string) =>
  STREAM_ID_64.test(id) ? null : STREAM_ID.test(id) ? TOO_LARGE : NOT_AN_ID;

/** Every stream id the API takes: "<ms>-<seq>", each part at most 18446744073709551615. */
export const StreamId = z
  .string()
  .regex(STREAM_ID_64, { error: (issue) => idProblem(String(issue.input)) ?? NOT_AN_ID })
  .openapi({ example: "1712345678901-0" });

/** An attempt record's id (shared/attempt-log.ts): a stream id, and ".<i>" for an entry's i-th. */
export const AttemptId = z
  .string()
  .regex(new RegExp(`^${PART}-${PART}(?:\\.\\d{1,4})?$`), {
    error: "must be an attempt id like 1712345678901-0 or 1712345678901-0.3",
  })
  .openapi({ example: "1712345678901-0.3" });

/**
 * `min` to `max` stream ids, each held to StreamId's rules with its messages, in one pass over
 * the list: a schema run per id was a fifth of the Worker's time in a pull that acks 1,000.
 */
export const streamIds = (min: number, max: number) =>
  z
    .array(z.string().openapi({ pattern: STREAM_ID_64.source, example: "1712345678901-0" }))
    .min(min)
    .max(max)
    .superRefine((ids, ctx) => {
      ids.forEach((id, i) => {
        const message = idProblem(id);
        if (message) ctx.addIssue({ code: "custom", path: [i], message });
      });
    });

export const ChannelParams = z.object({
  channel: z
    .string()
    .regex(CHANNEL_NAME, "must be 1-128 of A-Za-z0-9._- starting with a letter or digit")
    .openapi({ param: { name: "channel", in: "path" }, example: "orders" }),
});

export const MessageType = z
  .string()
  .max(256)
  .regex(/^[A-Za-z0-9._-]+$/, "must be 1-256 of A-Za-z0-9._-")
  .openapi({ example: "order.created" });

// Any text but control characters (a key of a delayed message is kept on a line of its own).
export const OrderingKey = z
  .string()
  .min(1)
  .max(256)
  .regex(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters it refuses
    /^[^\u0000-\u001f\u007f-\u009f]*$/,
    "must be 1-256 characters, none of them a control character",
  )
  .openapi({
    example: "customer-42",
    description:
      "An ordered subscription delivers the messages of one key in publish order, one request at a time; other keys, and messages without one (a lane of their own), go in parallel",
  });

// Any JSON value. Not z.json(): its recursive schema sends the OpenAPI generator into endless
// recursion; the body has been parsed from JSON already, so every value here is JSON anyway.
const JsonValue = z.unknown().openapi({ description: "Any JSON value", example: { orderId: 42 } });
const requiredJson = JsonValue.refine((value) => value !== undefined, "is required");

/** A message as a schedule holds it: data, a type and an ordering key, no delay (published at each run). */
export const PlainMessage = z.strictObject({
  data: requiredJson,
  type: MessageType.optional(),
  orderingKey: OrderingKey.optional(),
});

// When a message enters its channel (shared/delayed.ts): one of the two, or neither (now). Past
// times and 0 mean now; the 7 days of notBefore and the channel's retention are checked against
// the clock and the channel (routes/channels.ts, lua/publish.ts), which a schema cannot do.
const Delay = {
  delayMs: z.number().int().min(0).max(MAX_DELAY_MS).optional().openapi({
    description:
      "Enter the channel this many ms after the publish (0: now): a delayed message, stored at once, delivered when due. At most 7 days, and at most the channel's retention maxAgeMs",
    example: 60_000,
  }),
  notBefore: z.iso.datetime({ offset: true }).optional().openapi({
    description:
      "Enter the channel at this time (RFC 3339, Z or an offset): a delayed message. A time past: now. At most 7 days ahead, and at most the channel's retention maxAgeMs",
    example: "2026-12-24T18:00:00+01:00",
  }),
};
const notBoth = (value: { delayMs?: number | undefined; notBefore?: string | undefined }) =>
  value.delayMs === undefined || value.notBefore === undefined;
const NOT_BOTH = { message: 'give "delayMs" or "notBefore", not both' };
// The document says it too: a body that has both is refused (JSON Schema `not`; its properties
// named, as Redocly asks of a `required`).
const NOT_BOTH_DOCUMENTED = {
  not: { required: ["delayMs", "notBefore"], properties: { delayMs: {}, notBefore: {} } },
};

const NewMessage = z
  .strictObject({
    data: requiredJson,
    type: MessageType.optional(),
    orderingKey: OrderingKey.optional(),
    ...Delay,
  })
  .refine(notBoth, NOT_BOTH)
  .openapi(NOT_BOTH_DOCUMENTED);

// Exactly one of the two shapes: each is a closed object and needs its own field, so no body fits
// both (anyOf then means oneOf). A body that fits neither gets the message of the shape it came
// closer to, or this one (app.ts: rejectInvalid).
export const PublishBody = z
  .union(
    [
      NewMessage.openapi("PublishOne", {
        description:
          "Single publish: `data` (any JSON value), optionally `type`, and `delayMs` or `notBefore` for a delayed message",
      }),
      z
        .strictObject({
          messages: z.array(NewMessage).min(1).max(1000),
          ...Delay,
        })
        .refine(notBoth, NOT_BOTH)
        .openapi("PublishBatch", {
          ...NOT_BOTH_DOCUMENTED,
          description:
            "Batch publish: 1-1000 messages, appended in order in one round trip. `delayMs` or `notBefore` here delays every message that gives neither of its own",
        }),
    ],
    { error: 'give either "data" (and optionally "type") or "messages", not both or neither' },
  )
  .openapi("PublishRequest");

export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .regex(/^[\x21-\x7e]{1,255}$/, "must be 1-255 printable ASCII characters")
    .optional()
    .openapi({
      param: { name: "idempotency-key", in: "header" },
      description: "A repeat within 24 h returns the first publish's ids (200) and adds nothing",
    }),
});

// Any text is taken: a traceparent the W3C grammar refuses is ignored (a new trace is started),
// never an error (shared/trace.ts).
export const TraceHeaders = z.object({
  traceparent: z
    .string()
    .optional()
    .openapi({
      param: { name: "traceparent", in: "header" },
      example: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      description:
        "W3C Trace Context: kept with every message of the publish, delivered with it. Missing or invalid: a new trace is started",
    }),
  tracestate: z
    .string()
    .optional()
    .openapi({
      param: { name: "tracestate", in: "header" },
      description:
        "W3C Trace Context vendor list, kept beside the traceparent (up to 512 characters)",
    }),
});

export const PublishHeaders = IdempotencyHeaders.extend(TraceHeaders.shape);

/** A message's trace context, as every read of it shows it (shared/trace.ts). */
export const MessageTrace = {
  traceparent: z.string().openapi({
    example: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    description:
      "The W3C traceparent of the publish: the request's, or, when it had none, the one streamhook derives from the message's channel and id (not sampled; the same on every read)",
  }),
  tracestate: z
    .string()
    .optional()
    .openapi({ description: "The publish's tracestate, when it had one" }),
};

const PublishedId = z.string().openapi({
  description:
    "The message's stream id; a delayed message's id is \"d<16 hex>-<n>\", which it carries as `delayedId` once it has entered the channel",
  example: "1712345678901-0",
});
export const PublishedOne = z.object({ id: PublishedId }).openapi("Published");
export const PublishedMany = z.object({ ids: z.array(PublishedId) }).openapi("PublishedBatch");

/** The ordering key a message was published with, on every read of it. */
export const OrderingKeyField = {
  orderingKey: z.string().optional().openapi({
    description: "The ordering key it was published with, when it had one",
    example: "customer-42",
  }),
};

/** The id of a delayed message, as publish answered it, on every read of the message. */
export const DelayedIdField = {
  delayedId: z.string().optional().openapi({
    description:
      "A delayed message only: the id its publish answered (it entered the channel when due, and `id` is its stream id from then on)",
    example: "d3f9a0b1c2d3e4f50-0",
  }),
};

export const HistoryQuery = z.object({
  after: StreamId.optional().openapi({ description: "Return messages after this id (exclusive)" }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const Message = z
  .object({
    id: z.string(),
    type: z.string().nullable(),
    data: JsonValue,
    publishedAt: z.iso.datetime(),
    ...DelayedIdField,
    ...OrderingKeyField,
    ...MessageTrace,
  })
  .openapi("Message");

export const HistoryPage = z
  .object({ messages: z.array(Message), next: z.string().nullable() })
  .openapi("MessagePage");

const SizeBytes = z
  .number()
  .int()
  .openapi({
    description:
      "Redis' estimate of the channel's stream in bytes (MEMORY USAGE, sampled), consumer groups " +
      "included: what counts against Upstash's record size and database capacity",
  });

export const ChannelSummary = z
  .object({
    name: z.string(),
    length: z.number().int(),
    subscriptions: z.number().int(),
    lastId: z.string().nullable(),
    sizeBytes: SizeBytes,
  })
  .openapi("ChannelSummary");

export const Retention = z
  .object({
    maxAgeMs: z.number().int().nullable().openapi({
      description: "Messages older than this may be trimmed (null: no age limit)",
      example: 604_800_000,
    }),
    maxMessages: z.number().int().nullable().openapi({
      description: "The newest this many are kept (null: no count limit)",
      example: null,
    }),
  })
  .openapi("Retention");

const DAY_MS = 24 * 3_600_000;
export const RetentionChange = z
  .object({
    retention: z
      .object({
        maxAgeMs: z
          .number()
          .int()
          .min(1000)
          .max(3650 * DAY_MS)
          .nullable()
          .optional(),
        maxMessages: z.number().int().min(1).max(1_000_000_000).nullable().optional(),
      })
      .strict(),
  })
  .strict()
  .openapi("ChannelChange", {
    description:
      "Fields left out keep their value; null removes that limit. The next cron applies it (the channel's sweep), published to or not. Trimming never removes a message an active or paused subscription has not acknowledged, unless it fell behind by more than MAX_UNDELIVERED_AGE_MS",
  });

export const ChannelTotals = z
  .object({
    channels: z.number().int(),
    messages: z.number().int(),
    sizeBytes: SizeBytes,
  })
  .openapi("ChannelTotals", { description: "Sums over every channel listed" });

export const ChannelList = z
  .object({ channels: z.array(ChannelSummary), totals: ChannelTotals })
  .openapi("ChannelList");

export const DeleteChannelQuery = z.object({
  force: z.enum(["true", "false"]).optional().openapi({
    description:
      "true: delete the channel's subscriptions with it (otherwise 409 while it has any)",
  }),
});

export const ChannelDeleted = z
  .object({
    name: z.string(),
    messages: z.number().int().openapi({ description: "Messages the channel held" }),
    delayed: z
      .number()
      .int()
      .openapi({ description: "Delayed messages that had not entered it yet, deleted with it" }),
    subscriptions: z
      .array(z.string())
      .openapi({ description: "Subscriptions deleted with it (force), by name" }),
    idempotencyKeys: z
      .number()
      .int()
      .openapi({ description: "Idempotency-Key records of its publishes deleted" }),
  })
  .openapi("ChannelDeleted");

export const ChannelInfo = ChannelSummary.extend({
  retention: Retention,
  retentionIsDefault: z.boolean().openapi({
    description:
      "True while the channel has no retention of its own (RETENTION_MAX_AGE_MS, RETENTION_MAX_MESSAGES)",
  }),
  firstId: z.string().nullable().openapi({
    description: "The oldest message kept: history and replay reach back this far",
  }),
  firstPublishedAt: z.iso.datetime().nullable(),
  lastPublishedAt: z.iso.datetime().nullable(),
}).openapi("Channel");

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: "invalid_request" }),
      message: z.string(),
    }),
  })
  .openapi("Error");

export const errorResponse = (description: string) => ({
  content: { "application/json": { schema: ErrorBody } },
  description,
});

const header = (description: string) => ({ description, schema: { type: "integer" as const } });

/** The error responses every authenticated route can give, for the OpenAPI document. */
export const commonErrors = {
  400: errorResponse("Invalid JSON or a field that fails validation (the message names it)"),
  401: errorResponse("Missing or invalid bearer token, or a deleted API key"),
  403: errorResponse(
    "forbidden: the API key lacks the scope this route needs, or may not use its channel (the message names which)",
  ),
  429: {
    ...errorResponse("rate_limited: the API key is over its rateLimit"),
    headers: {
      "Retry-After": header("Seconds until the window ends"),
      "RateLimit-Limit": header("Requests allowed per window"),
      "RateLimit-Remaining": header("Requests left in this window (0)"),
      "RateLimit-Reset": header("Seconds until the window ends"),
    },
  },
  503: errorResponse("Redis is unreachable"),
} as const;

export const notFoundError = { 404: errorResponse("No such channel") } as const;
/** Writes Upstash may refuse for size. */
export const storageError = {
  507: errorResponse(
    "storage_full: Redis refused the write for size (a key at its record limit, the database at its capacity); nothing was written",
  ),
} as const;
/** Every route refuses a body over 1 MiB (functions/body-limit.ts); listed where one is taken. */
export const tooLarge = {
  413: errorResponse("payload_too_large: the body is over 1 MiB (1,048,576 bytes)"),
} as const;
export const bodyErrors = {
  413: errorResponse("Message data over MAX_MESSAGE_BYTES, or a body over 1 MiB"),
  415: errorResponse("The body is not application/json"),
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});
