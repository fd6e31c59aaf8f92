// A subscription's dead letters: list them, put them back for delivery, purge them.

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { listDeadLetters, purgeDeadLetters } from "../../shared/dead-letters.ts";
import { redrive } from "../../shared/engine/dead-letters.ts";
import { mustLoadSubscription } from "../../shared/subscriptions.ts";
import { needs } from "../auth.ts";
import { forgetSettings } from "../pull-settings.ts";
import {
  bodyErrors,
  commonErrors,
  json,
  notFoundError,
  storageError,
  tooLarge,
} from "../schemas.ts";
import {
  DeadLetterPage,
  DeadLetterQuery,
  RedriveBody,
  SubscriptionParams,
} from "../subscription-schemas.ts";
import type { AppEnv } from "../types.ts";

const path = "/v1/channels/{channel}/subscriptions/{name}/dead-letters";

// "No body: all of them" (docs/api.md). An empty body is no body, whatever its content type says (many
// clients send application/json with nothing), not malformed JSON: it reaches the route as a
// request without either. The body is at most 1 MiB here (body-limit.ts runs first).
const emptyMeansAll: MiddlewareHandler = async (c, next) => {
  if (c.req.raw.body !== null) {
    const text = await c.req.raw.text();
    const headers = new Headers(c.req.raw.headers);
    headers.delete("content-length");
    if (text.trim() === "") {
      headers.delete("content-type");
      // A fresh request: one built on the read one without a body of its own would be unusable.
      c.req.raw = new Request(c.req.raw.url, { method: c.req.raw.method, headers });
    } else {
      c.req.raw = new Request(c.req.raw, { headers, body: text });
    }
  }
  await next();
};

const routes = {
  list: createRoute({
    method: "get",
    path,
    operationId: "deadLetters.list",
    ...needs("subscribe"),
    summary: "Messages that used up their attempts, oldest first, with their last error",
    request: { params: SubscriptionParams, query: DeadLetterQuery },
    responses: {
      200: json(DeadLetterPage, "A page"),
      ...commonErrors,
      ...notFoundError,
    },
  }),
  redrive: createRoute({
    method: "post",
    path: `${path}/redrive`,
    operationId: "deadLetters.redrive",
    ...needs("subscribe", {}, emptyMeansAll),
    summary:
      "Put dead letters back for delivery (push) or pulling (pull) to this subscription: all, or {ids}",
    request: {
      params: SubscriptionParams,
      body: {
        content: { "application/json": { schema: RedriveBody } },
        required: false,
        description: "No body, an empty one or {}: all of them",
      },
    },
    responses: {
      200: json(z.object({ redriven: z.number().int(), missing: z.array(z.string()) }), "Moved"),
      ...commonErrors,
      ...notFoundError,
      ...tooLarge,
      415: bodyErrors[415],
      ...storageError,
    },
  }),
  purge: createRoute({
    method: "delete",
    path,
    operationId: "deadLetters.purge",
    ...needs("subscribe"),
    summary: "Delete every dead letter of the subscription",
    request: { params: SubscriptionParams },
    responses: {
      200: json(z.object({ purged: z.number().int() }), "Deleted"),
      ...commonErrors,
      ...notFoundError,
    },
  }),
};

export function deadLetterRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.list, async (c) => {
      const { channel, name } = c.req.valid("param");
      await mustLoadSubscription(c.var.db, channel, name);
      const { maxMessageBytes } = c.var.config;
      const page = await listDeadLetters(
        c.var.db,
        channel,
        name,
        c.req.valid("query"),
        maxMessageBytes,
      );
      const messages = page.messages.map((m) => ({ ...m, data: JSON.parse(m.data) as unknown }));
      return c.json({ ...page, messages }, 200);
    })
    .openapi(routes.redrive, async (c) => {
      const { channel, name } = c.req.valid("param");
      const { ids } = c.req.valid("json");
      const sub = await mustLoadSubscription(c.var.db, channel, name);
      const result = await redrive(c.var.db, sub, ids ?? null, Date.now());
      if (sub.mode === "pull") {
        forgetSettings(c.var.db, channel, name); // this isolate's pulls see the marker at once
      } else if (result.redriven > 0) {
        c.executionCtx.waitUntil(c.var.delivery.wake(channel, name));
      }
      return c.json(result, 200);
    })
    .openapi(routes.purge, async (c) => {
      const { channel, name } = c.req.valid("param");
      await mustLoadSubscription(c.var.db, channel, name);
      return c.json({ purged: await purgeDeadLetters(c.var.db, channel, name) }, 200);
    });
}
