// Request and response schemas of a channel's delayed messages (routes/delayed.ts).

import { z } from "@hono/zod-openapi";
import { DELAYED_CURSOR, DELAYED_ID } from "../shared/delayed.ts";
import { ChannelParams, MessageTrace, OrderingKeyField } from "./schemas.ts";

const DelayedId = z
  .string()
  .regex(DELAYED_ID, 'must be a delayed message\'s id like "d3f9a0b1c2d3e4f50-0"')
  .openapi({ example: "d3f9a0b1c2d3e4f50-0" });

export const DelayedParams = ChannelParams.extend({
  delayedId: DelayedId.openapi({ param: { name: "delayedId", in: "path" } }),
});

export const DelayedQuery = z.object({
  after: z
    .string()
    .regex(DELAYED_CURSOR, "must be the `next` of an earlier page")
    .optional()
    .openapi({
      description: "The `next` of the previous page: the messages due after its last",
      example: "1712345678901:d3f9a0b1c2d3e4f50-0",
    }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const DelayedMessage = z
  .object({
    id: z
      .string()
      .openapi({ description: "As publish answered it", example: "d3f9a0b1c2d3e4f50-0" }),
    type: z.string().nullable(),
    data: z.unknown().openapi({ description: "The published JSON value" }),
    notBefore: z.iso.datetime().openapi({ description: "When it enters the channel" }),
    publishedAt: z.iso.datetime().openapi({ description: "When it was published" }),
    traceparent: MessageTrace.traceparent.optional().openapi({
      description: "The publish's W3C traceparent, when it came with one",
    }),
    tracestate: MessageTrace.tracestate,
    ...OrderingKeyField,
  })
  .openapi("DelayedMessage");

export const DelayedPage = z
  .object({
    messages: z.array(DelayedMessage).openapi({ description: "Earliest due first" }),
    next: z.string().nullable().openapi({ description: "Pass as `after` for the next page" }),
  })
  .openapi("DelayedPage");
