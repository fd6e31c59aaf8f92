// The HTTP API: middleware, routes, and the one place errors become HTTP responses.
//
// Every error leaves as {"error":{"code","message"}}: typed AppErrors thrown by routes and the
// data layer, Hono's HTTPExceptions (malformed JSON, wrong content type, auth challenges), an
// unreachable Redis (503), and anything unexpected (logged, 500).

import { OpenAPIHono } from "@hono/zod-openapi";
import { HTTPException } from "hono/http-exception";
import type { ZodError, z } from "zod";
import { ConfigError, loadConfig } from "../shared/config.ts";
import type { DeliveryFactory } from "../shared/delivery.ts";
import {
  AppError,
  InvalidInput,
  RedisUnavailable,
  StorageFull,
  Unauthorized,
} from "../shared/errors.ts";
import { Meter } from "../shared/meter.ts";
import { getDb, isStorageFull, isUnavailable } from "../shared/redis.ts";
import { refusalOf } from "../shared/storage.ts";
import { authenticate, rateLimit } from "./auth.ts";
import { drain, limitBody } from "./body-limit.ts";
import { dashboardRoutes } from "./dashboard/routes.tsx";
import { methodNotAllowed } from "./method-not-allowed.ts";
import { OPENAPI_CONFIG, registerWebhooks } from "./openapi.ts";
import { attemptRoutes } from "./routes/attempts.ts";
import { channelDeleteRoutes } from "./routes/channel-delete.ts";
import { channelRoutes } from "./routes/channels.ts";
import { deadLetterRoutes } from "./routes/dead-letters.ts";
import { delayedRoutes } from "./routes/delayed.ts";
import { deliverRoutes } from "./routes/deliver.ts";
import { healthRoutes } from "./routes/health.ts";
import { keyRoutes } from "./routes/keys.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { pullRoutes } from "./routes/pull.ts";
import { scheduleRoutes } from "./routes/schedules.ts";
import { subscriptionRoutes } from "./routes/subscriptions.ts";
import type { AppEnv } from "./types.ts";

export function createApp(deliveryFactory: DeliveryFactory) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: rejectInvalid });

  app.use(async (c, next) => {
    const config = loadConfig(c.env);
    // The request's invocation: its Redis requests and the deliveries it kicks share one budget.
    const meter = new Meter({
      limit: config.passMaxSubrequests,
      deadline: Date.now() + config.passBudgetMs,
    });
    const db = getDb(config, meter);
    c.set("config", config);
    c.set("db", db);
    c.set("delivery", deliveryFactory(config, db, c.env.DELIVERY_QUEUE));
    await next();
  });
  // 401, then 429, then (per route, `allow`) 403: see auth.ts.
  app.use("/v1/*", authenticate(), rateLimit());
  app.use(limitBody());

  app.route("/", healthRoutes());
  app.route("/", channelRoutes());
  app.route("/", channelDeleteRoutes());
  app.route("/", delayedRoutes());
  app.route("/", subscriptionRoutes());
  app.route("/", pullRoutes());
  app.route("/", deadLetterRoutes());
  app.route("/", attemptRoutes());
  app.route("/", metricsRoutes());
  app.route("/", deliverRoutes());
  app.route("/", keyRoutes());
  app.route("/", scheduleRoutes());
  // HTML, not API routes: outside the OpenAPI document.
  app.route("/", dashboardRoutes());

  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
  });
  registerWebhooks(app.openAPIRegistry);
  app.doc31("/openapi.json", OPENAPI_CONFIG);

  app.notFound(async (c) => {
    await drain(c.req.raw).catch(() => {});
    const allowed = methodNotAllowed(app.routes, c.req.method, c.req.path);
    if (allowed.length > 0) {
      const error = new AppError("method_not_allowed", 405, `${c.req.method} is not allowed here`);
      return errorResponse(error, { Allow: allowed.join(", ") });
    }
    return errorResponse(new AppError("not_found", 404, `no route for ${c.req.path}`));
  });

  app.onError(async (error, c) => {
    const headers: Record<string, string> = {};
    const appError = toAppError(error, headers);
    if (appError.status === 500) console.error("unhandled error", error);
    await drain(c.req.raw).catch(() => {}); // the body's own failure is not the answer's
    return errorResponse(appError, { ...appError.headers, ...headers });
  });

  return app;
}

function errorResponse(error: AppError, headers: Record<string, string> = {}): Response {
  return Response.json(
    { error: { code: error.code, message: error.message } },
    { status: error.status, headers },
  );
}

function toAppError(error: unknown, headers: Record<string, string>): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof HTTPException) {
    const challenge = error.getResponse().headers.get("WWW-Authenticate");
    // bearerAuth answers a malformed Authorization header with 400; to a client it is the same
    // mistake as a wrong token, so both are 401 (with the challenge header kept).
    if (challenge) {
      headers["WWW-Authenticate"] = challenge;
      return new Unauthorized();
    }
    switch (error.status) {
      case 400:
        return new InvalidInput(`${error.message}`, "invalid_json");
      case 413:
        return new AppError("payload_too_large", 413, error.message);
      case 415:
        return new AppError("unsupported_media_type", 415, "the body must be application/json");
      default:
        return new AppError("http_error", error.status === 404 ? 404 : 500, error.message);
    }
  }
  if (isUnavailable(error)) return new RedisUnavailable(error);
  if (isStorageFull(error)) {
    return new StorageFull(
      `Redis refused the write for size (${refusalOf(error)}); nothing was written`,
    );
  }
  if (error instanceof ConfigError) return new AppError("misconfigured", 500, error.message);
  return new AppError("internal", 500, "internal error");
}

// The defaultHook of every validated route: turns the first schema failures into one 400 that
// names the fields ("body.messages[2].type: ...").
function rejectInvalid(result: { success: boolean; error?: ZodError; target: string }): undefined {
  if (result.success || !result.error) return;
  const where: Record<string, string> = {
    json: "body",
    query: "query",
    param: "path",
    header: "header",
  };
  const problems = problemsOf(result.error.issues, [where[result.target] ?? result.target]);
  throw new InvalidInput(problems.slice(0, 5).join("; "));
}

/**
 * Each issue as "path: message". A union the value fits no shape of (a publish, a subscription
 * create) reports the issues of the one shape it came closest to, when one did: of the shapes
 * whose own literal fields (`mode`) it does not contradict, the one with the fewest issues. Else
 * the union's own message ("give either ... or ..."). A shape's paths start at the union.
 */
function problemsOf(issues: readonly z.core.$ZodIssue[], at: PropertyKey[]): string[] {
  return issues.flatMap((issue) => {
    const path = [...at, ...issue.path];
    const closest = issue.code === "invalid_union" ? closestShape(issue.errors) : undefined;
    return closest ? problemsOf(closest, path) : [`${pathText(path)}: ${issue.message}`];
  });
}

function closestShape(shapes: z.core.$ZodIssue[][]): z.core.$ZodIssue[] | undefined {
  const meant = shapes.filter(
    (issues) => !issues.some((i) => i.code === "invalid_value" && i.path.length === 1),
  );
  const fewest = Math.min(...meant.map((issues) => issues.length));
  const closest = meant.filter((issues) => issues.length === fewest);
  return closest.length === 1 ? closest[0] : undefined;
}

const pathText = ([first, ...rest]: PropertyKey[]) =>
  rest.reduce<string>(
    (acc, part) => (typeof part === "number" ? `${acc}[${part}]` : `${acc}.${String(part)}`),
    String(first),
  );
