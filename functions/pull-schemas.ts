// Request and response schemas of pulling from a pull subscription (routes/pull.ts).

import { z } from "@hono/zod-openapi";
import { MAX_VISIBILITY_MS, PULL_VISIBILITY_MS } from "../shared/engine/queue.ts";
import {
  CHANNEL_NAME,
  DelayedIdField,
  MessageTrace,
  OrderingKeyField,
  streamIds,
} from "./schemas.ts";

const ConsumerName = z
  .string()
  .regex(CHANNEL_NAME, "must be 1-128 of A-Za-z0-9._- starting with a letter or digit")
  .refine((name) => name !== "deliverer", '"deliverer" is the push deliverer\'s')
  .openapi({
    example: "worker-1",
    description: 'One puller of the group; default "default" ("deliverer" is taken by push)',
    not: { const: "deliverer" }, // the refine's rule, in the document
  });

const VisibilityTimeoutMs = z.number().int().min(1000).max(MAX_VISIBILITY_MS);

export const PullBody = z
  .strictObject({
    max: z.number().int().min(1).max(1000).default(10).openapi({ default: 10 }),
    visibilityTimeoutMs: VisibilityTimeoutMs.default(PULL_VISIBILITY_MS).openapi({
      default: PULL_VISIBILITY_MS,
      description: "How long the messages stay hidden from other consumers unless acked",
    }),
    consumer: ConsumerName.default("default"),
    waitMs: z.number().int().min(0).max(20_000).default(0).openapi({
      default: 0,
      description: "Long-poll: wait up to this long for a message when none is there",
    }),
    ack: streamIds(0, 1000).default([]).openapi({
      default: [],
      description:
        "Ids of earlier pulls to acknowledge first, as POST .../ack would: one request per batch",
    }),
  })
  .openapi("Pull");

export const PulledMessage = z
  .object({
    id: z.string(),
    type: z.string().nullable(),
    data: z.unknown(),
    publishedAt: z.iso.datetime(),
    attempt: z.number().int().openapi({ description: "1 the first time it is handed out" }),
    redrivenFrom: z.string().optional().openapi({
      description:
        'A redriven dead letter only: its original id (its `id` here is "0-<n>", its handle in the redrive stream)',
    }),
    ...DelayedIdField,
    ...OrderingKeyField,
    ...MessageTrace,
  })
  .openapi("PulledMessage");

export const Pulled = z
  .object({
    messages: z.array(PulledMessage),
    acked: z.number().int().openapi({ description: "How many of `ack` were pending (now acked)" }),
  })
  .openapi("Pulled");

const Ids = streamIds(1, 1000);

export const AckBody = z.strictObject({ ids: Ids }).openapi("Ack");
export const Acked = z
  .object({ acked: z.number().int().openapi({ description: "Ids that were pending" }) })
  .openapi("Acked");

/** A nack's or extend's consumer: accepted as before, and not needed (see its description). */
const SettlingConsumer = ConsumerName.default("default").openapi({
  description:
    "Accepted, and not needed: a message nacked or extended waits with the subscription " +
    "whoever pulled it, and any consumer may pull it when it is visible again",
});

export const NackBody = z
  .strictObject({
    ids: Ids,
    delayMs: z.number().int().min(0).max(MAX_VISIBILITY_MS).default(0).openapi({
      default: 0,
      description: "Visible again after this long (0: now)",
    }),
    consumer: SettlingConsumer,
  })
  .openapi("Nack");
export const Nacked = z.object({ nacked: z.number().int() }).openapi("Nacked");

export const ExtendBody = z
  .strictObject({
    ids: Ids,
    visibilityTimeoutMs: VisibilityTimeoutMs,
    consumer: SettlingConsumer,
  })
  .openapi("Extend");
export const Extended = z.object({ extended: z.number().int() }).openapi("Extended");
