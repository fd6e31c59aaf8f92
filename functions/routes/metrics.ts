// GET /v1/metrics: delivery counters and gauges for Prometheus (shared/metrics.ts).

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { canSee } from "../../shared/api-keys.ts";
import { EXPOSITION_CONTENT_TYPE } from "../../shared/exposition.ts";
import { scrape } from "../../shared/metrics.ts";
import { needs } from "../auth.ts";
import { MetricsText } from "../observe-schemas.ts";
import { commonErrors } from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const route = createRoute({
  method: "get",
  path: "/v1/metrics",
  operationId: "metrics",
  ...needs("read"),
  summary:
    "Prometheus metrics of the channels the key may use: published, delivered, attempts by result, dead letters, lag, pending, publish-to-2xx latency",
  responses: {
    200: {
      content: { "text/plain": { schema: MetricsText } },
      description: `Prometheus text exposition format 0.0.4 (content-type: ${EXPOSITION_CONTENT_TYPE})`,
    },
    ...commonErrors,
  },
});

export function metricsRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
    const { principal } = c.var;
    const text = await scrape(c.var.db, (name) => canSee(principal, name));
    return c.text(text, 200, { "content-type": EXPOSITION_CONTENT_TYPE });
  });
}
