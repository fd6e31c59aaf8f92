// GET /health: does Redis answer, and does it take writes? The only route without a token, for
// load balancers and uptime checks; it reveals nothing but "ok", "unreachable" or "full". It
// writes a few bytes (shared/storage.ts: 1 command, like a PING), since a full database shows
// only by refusing a write.

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { probeWrites } from "../../shared/storage.ts";
import { errorResponse, json } from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const health = createRoute({
  method: "get",
  path: "/health",
  operationId: "health",
  summary:
    "200 when Redis answers and takes writes; 507 when the database is full; 503 unreachable",
  security: [],
  responses: {
    200: json(z.object({ ok: z.literal(true) }), "Redis took a write of a few bytes"),
    503: errorResponse("Redis is unreachable"),
    507: errorResponse(
      "storage_full: the database is full (Redis refused a write of a few bytes at its capacity): publishes are refused, reads and deletes still work",
    ),
  },
});

export function healthRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(health, async (c) => {
    await probeWrites(c.var.db, Date.now());
    return c.json({ ok: true as const }, 200);
  });
}
