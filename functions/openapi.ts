// The OpenAPI document's own fields, and its `webhooks` section: what streamhook POSTs to a push
// subscription's url. GET /openapi.json serves the document, and dev/generate-client.ts writes the
// same one to client/openapi.json, from which the typed client's types are generated.

import { type OpenAPIHono, z } from "@hono/zod-openapi";
import { DelayedIdField, json, MessageTrace, OrderingKeyField } from "./schemas.ts";

/** Everything of the document that is not a route or a schema. */
export const OPENAPI_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "streamhook",
    version: "1.0.0",
    description: "Webhook push on Redis Streams: publish to channels, subscribe webhooks.",
    license: { name: "MIT", identifier: "MIT" },
  },
  servers: [
    {
      url: "https://streamhook.{subdomain}.workers.dev",
      description: "A deployment (wrangler deploy): the Worker's URL",
      variables: {
        subdomain: { default: "example", description: "Your workers.dev subdomain" },
      },
    },
    { url: "http://127.0.0.1:8787", description: "The local stack (npm run dev)" },
  ],
  security: [{ bearer: [] }],
};

export const WebhookMessage = z
  .object({
    id: z.string().openapi({ description: "The message's stream id: deduplicate on it" }),
    type: z.string().nullable(),
    data: z.unknown().openapi({ description: "The published JSON value, as published" }),
    publishedAt: z.iso.datetime(),
    attempt: z.number().int().openapi({ description: "1 on the first delivery, then 2, 3..." }),
    ...DelayedIdField,
    ...OrderingKeyField,
    ...MessageTrace,
  })
  .openapi("WebhookMessage");

export const WebhookBatch = z
  .object({
    channel: z.string(),
    subscription: z.string(),
    messages: z.array(WebhookMessage).openapi({ description: "In stream order" }),
  })
  .openapi("WebhookBatch");

export const WebhookAnswer = z
  .object({
    failed: z.array(z.string()).openapi({
      description: "Ids to retry later; every other message of the batch is acknowledged",
    }),
  })
  .openapi("WebhookAnswer");

const signed = (description: string) => z.string().openapi({ description });

/** Adds the webhook streamhook sends (worker/deliver.ts) to the app's document. */
export function registerWebhooks(registry: OpenAPIHono["openAPIRegistry"]): void {
  registry.registerWebhook({
    method: "post",
    path: "batch",
    operationId: "webhooks.batch",
    summary: "A signed batch of messages, POSTed to a push subscription's url",
    description:
      "Signed per Standard Webhooks: verify the signature over the raw body before parsing it.",
    request: {
      headers: z.object({
        "webhook-id": signed("The same on every retry of the same batch"),
        "webhook-timestamp": signed("Seconds since the epoch, of this attempt"),
        "webhook-signature": signed(
          "v1,<base64 HMAC-SHA256>; one per active secret, space-separated, while a secret rotates",
        ),
        traceparent: z.string().openapi({
          description:
            "W3C Trace Context of this attempt: a new span id on every attempt, in the messages' trace when they all share one (its parent: the first message's publish), else a new trace that each message's own traceparent links to",
        }),
        tracestate: z.string().optional().openapi({
          description: "The first message's tracestate, when the request is in the messages' trace",
        }),
      }),
      body: { content: { "application/json": { schema: WebhookBatch } }, required: true },
    },
    responses: {
      200: json(
        WebhookAnswer,
        "Any 2xx acknowledges the batch; a body {failed: [...]} keeps those ids for a retry",
      ),
      410: { description: "Gone: the subscription is paused" },
      429: { description: "Retried after Retry-After (capped at RETRY_MAX_MS)" },
      503: { description: "Retried after Retry-After (capped at RETRY_MAX_MS)" },
    },
  });
}
