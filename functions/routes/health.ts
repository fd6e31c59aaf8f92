// GET /health: is Redis answering? The only route without a token, for load balancers and uptime
// checks; it reveals nothing but "ok".

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppEnv } from "../app.ts";
import { errorResponse, json } from "../schemas.ts";

const health = createRoute({
  method: "get",
  path: "/health",
  summary: "Liveness: 200 when Redis answers, 503 otherwise",
  security: [],
  responses: {
    200: json(z.object({ ok: z.literal(true) }), "Redis answered PING"),
    503: errorResponse("Redis is unreachable"),
  },
});

export function healthRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(health, async (c) => {
    await c.var.db.redis.ping();
    return c.json({ ok: true as const }, 200);
  });
}
