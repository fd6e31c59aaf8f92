// A subscription's dead letters: list them, put them back for delivery, purge them.

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import {
  listDeadLetters,
  purgeDeadLetters,
  redriveDeadLetters,
} from "../../shared/dead-letters.ts";
import { Conflict, NotFound } from "../../shared/errors.ts";
import type { Db } from "../../shared/redis.ts";
import { loadSubscription } from "../../shared/subscriptions.ts";
import type { AppEnv } from "../app.ts";
import { commonErrors, json, notFoundError, storageError } from "../schemas.ts";
import {
  DeadLetterPage,
  DeadLetterQuery,
  RedriveBody,
  SubscriptionParams,
} from "../subscription-schemas.ts";

const path = "/v1/channels/{channel}/subscriptions/{name}/dead-letters";

const routes = {
  list: createRoute({
    method: "get",
    path,
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
    summary: "Put dead letters back for delivery to this subscription: all, or {ids}",
    request: {
      params: SubscriptionParams,
      body: { content: { "application/json": { schema: RedriveBody } }, required: false },
    },
    responses: {
      200: json(z.object({ redriven: z.number().int(), missing: z.array(z.string()) }), "Moved"),
      ...commonErrors,
      ...notFoundError,
      ...storageError,
    },
  }),
  purge: createRoute({
    method: "delete",
    path,
    summary: "Delete every dead letter of the subscription",
    request: { params: SubscriptionParams },
    responses: {
      200: json(z.object({ purged: z.number().int() }), "Deleted"),
      ...commonErrors,
      ...notFoundError,
    },
  }),
};

// Dead letters belong to a subscription: an unknown one is a 404, not an empty list.
async function mustExist(db: Db, channel: string, name: string) {
  const sub = await loadSubscription(db, channel, name);
  if (!sub) {
    throw new NotFound(
      `no subscription "${name}" on channel "${channel}"`,
      "subscription_not_found",
    );
  }
  return sub;
}

export function deadLetterRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.list, async (c) => {
      const { channel, name } = c.req.valid("param");
      await mustExist(c.var.db, channel, name);
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
      const sub = await mustExist(c.var.db, channel, name);
      // TODO(pull): redrive reads the redrive stream with the push deliverer; pulls do not read it yet.
      if (sub.mode === "pull") {
        throw new Conflict(
          "redrive is not available for pull subscriptions yet",
          "not_push_subscription",
        );
      }
      const result = await redriveDeadLetters(c.var.db, sub, ids ?? null, Date.now());
      if (result.redriven > 0) c.executionCtx.waitUntil(c.var.delivery.wake(channel, name));
      return c.json(result, 200);
    })
    .openapi(routes.purge, async (c) => {
      const { channel, name } = c.req.valid("param");
      await mustExist(c.var.db, channel, name);
      return c.json({ purged: await purgeDeadLetters(c.var.db, channel, name) }, 200);
    });
}
