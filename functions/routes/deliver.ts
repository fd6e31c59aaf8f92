// POST /v1/deliver: one delivery pass now, the same the cron runs every minute.

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { needs } from "../auth.ts";
import { commonErrors, json } from "../schemas.ts";
import { PassSummary } from "../subscription-schemas.ts";
import type { AppEnv } from "../types.ts";

const route = createRoute({
  method: "post",
  path: "/v1/deliver",
  operationId: "deliver",
  ...needs("admin", { everyChannel: true }),
  summary: "Run one delivery pass now and return its summary",
  responses: { 200: json(PassSummary, "What the pass did, per subscription"), ...commonErrors },
});

export function deliverRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) =>
    c.json(await c.var.delivery.pass(), 200),
  );
}
