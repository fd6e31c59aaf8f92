// A subscription's attempt log: the last ~1,000 webhook requests, newest first.

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { readAttempts } from "../../shared/attempt-log.ts";
import { mustLoadSubscription } from "../../shared/subscriptions.ts";
import { needs } from "../auth.ts";
import { AttemptPage, AttemptQuery } from "../observe-schemas.ts";
import { commonErrors, json, notFoundError } from "../schemas.ts";
import { SubscriptionParams } from "../subscription-schemas.ts";
import type { AppEnv } from "../types.ts";

const route = createRoute({
  method: "get",
  path: "/v1/channels/{channel}/subscriptions/{name}/attempts",
  operationId: "subscriptions.attempts",
  ...needs("read"),
  summary:
    "The subscription's last ~1,000 webhook requests, newest first: status, duration, error and the answer's first 1 KiB",
  request: { params: SubscriptionParams, query: AttemptQuery },
  responses: {
    200: json(AttemptPage, "A page (a pull subscription's is always empty: it makes no requests)"),
    ...commonErrors,
    ...notFoundError,
  },
});

export function attemptRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    const { channel, name } = c.req.valid("param");
    const { db } = c.var;
    // 1 HMGET, then 1 XREVRANGE: the log of an unknown subscription is a 404, not an empty page.
    const sub = await mustLoadSubscription(db, channel, name);
    if (sub.mode === "pull") return c.json({ attempts: [], next: null }, 200);
    return c.json(await readAttempts(db, channel, name, c.req.valid("query")), 200);
  });
}
