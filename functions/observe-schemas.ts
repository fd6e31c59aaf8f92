// Schemas of what shows how delivery goes: a subscription's attempt log and GET /v1/metrics.

import { z } from "@hono/zod-openapi";
import { RESPONSE_SNIPPET_BYTES } from "../shared/attempt-log.ts";
import { AttemptId } from "./schemas.ts";

export const AttemptQuery = z.object({
  after: AttemptId.optional().openapi({
    description: "Return attempts older than this one (its `id`, exclusive): the `next` of a page",
  }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const Attempt = z
  .object({
    id: z.string().openapi({
      example: "1712345678901-0.3",
      description:
        "The record's id, the paging cursor: its log entry's (a stream id), with `.<i>` after it for the entry's i-th record (the records of a deliverer's requests are written together)",
    }),
    at: z.iso.datetime().openapi({ description: "When the request started" }),
    attempt: z.number().int().openapi({
      description: "The attempt number of its messages (the highest, should they differ)",
    }),
    messages: z.number().int().openapi({ description: "Messages in the request" }),
    firstId: z.string().openapi({ description: "The first message's id" }),
    lastId: z.string().openapi({ description: "The last message's id" }),
    status: z.union([z.number().int(), z.enum(["timeout", "network"])]).openapi({
      description:
        'The answer\'s HTTP status; "timeout" or "network" when no whole answer came (a 2xx whose body broke off included: `error` says so)',
    }),
    durationMs: z.number().int().openapi({
      description: "From the request's start to the end of its answer (or the failure)",
    }),
    error: z.string().nullable().openapi({
      description: "Null when the endpoint accepted the request (2xx); else what went wrong",
    }),
    body: z.string().openapi({
      description: `The first ${RESPONSE_SNIPPET_BYTES} bytes of the answer's body, as UTF-8 text ("" when none)`,
    }),
    traceparent: z.string().nullable().openapi({
      example: "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01",
      description:
        "The request's W3C traceparent header: a span of its own, in its messages' trace when they share one, else a new trace (null: logged before tracing)",
    }),
    held: z
      .array(
        z.object({
          orderingKey: z.string().nullable().openapi({
            description: "null: the messages published without a key",
          }),
          messageId: z.string().openapi({ description: "The message that failed here" }),
        }),
      )
      .openapi({
        description:
          "An ordered subscription's failed request: the ordering keys it holds back from then on, each behind its message that failed (see heldKeys on the subscription). Empty otherwise",
      }),
  })
  .openapi("Attempt");

export const AttemptPage = z
  .object({
    attempts: z.array(Attempt).openapi({ description: "Newest first" }),
    next: z.string().nullable().openapi({
      description: "Pass as `after` for the next (older) page; null when this is the last",
    }),
  })
  .openapi("AttemptPage");

export const MetricsText = z.string().openapi({
  description: "Prometheus text exposition format 0.0.4 (see docs/operations.md, Metrics)",
  example:
    '# HELP streamhook_messages_published_total Messages published to the channel.\n# TYPE streamhook_messages_published_total counter\nstreamhook_messages_published_total{channel="orders"} 42\n',
});
