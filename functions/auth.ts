// Who may call what. Three steps, in this order, on every /v1 route:
//
//   authenticate  the bearer token is API_TOKEN (the root: every scope, every channel, never
//                 rate limited) or an API key's secret (1 HGET, shared/api-keys.ts); else 401
//   rateLimit     a key with a rateLimit counts the request (2 commands, shared/rate-limit.ts);
//                 over it, 429 with Retry-After and RateLimit-* headers
//   allow(scope)  per route: the key holds the scope (admin holds all) and may touch the route's
//                 channel; else 403 naming the missing scope or the channel. Routes that reach
//                 every channel (key management, POST /v1/deliver) also need channels ["*"]
//
// So a request with a key costs 1 command before its route runs, 3 with a rate limit (4 on the
// first request of a window); with API_TOKEN, none.

import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { timingSafeEqual } from "hono/utils/buffer";
import {
  allChannels,
  canSee,
  findApiKey,
  hasScope,
  type Principal,
  type Scope,
} from "../shared/api-keys.ts";
import { Forbidden, RateLimited } from "../shared/errors.ts";
import { countRequest } from "../shared/rate-limit.ts";

/** Sets c.var.principal, or answers 401 (with the Bearer challenge). */
export const authenticate = (): MiddlewareHandler =>
  bearerAuth({
    verifyToken: async (token, c) => {
      const { config, db } = c.var;
      // Hono's timingSafeEqual hashes both sides, then compares every byte: constant time.
      if (await timingSafeEqual(token, config.apiToken)) {
        c.set("principal", { kind: "root" });
        return true;
      }
      const key = await findApiKey(db, token);
      if (!key) return false;
      c.set("principal", { kind: "key", key });
      return true;
    },
  });

/** Counts the request against its key's rate limit, if it has one; 429 when over. */
export const rateLimit = (): MiddlewareHandler => async (c, next) => {
  const principal = c.var.principal;
  if (principal.kind === "key" && principal.key.rateLimit) {
    const result = await countRequest(c.var.db, principal.key.id, principal.key.rateLimit);
    const resetSeconds = Math.max(0, Math.ceil((result.resetAt - Date.now()) / 1000));
    const headers = {
      "RateLimit-Limit": String(result.limit),
      "RateLimit-Remaining": String(result.remaining),
      "RateLimit-Reset": String(resetSeconds),
    };
    if (!result.allowed) {
      throw new RateLimited(
        `key "${principal.key.name}" is over its rate limit of ${result.limit} requests per ` +
          `${principal.key.rateLimit.windowMs} ms; retry in ${resetSeconds} s`,
        // Retry-After is whole seconds: at least 1, or a client would retry inside the window.
        { ...headers, "Retry-After": String(Math.max(1, resetSeconds)) },
      );
    }
    for (const [name, value] of Object.entries(headers)) c.header(name, value);
  }
  await next();
};

/**
 * A route's permission: the scope it needs, checked against the route's `channel` path parameter
 * when it has one, and against "every channel" when `everyChannel` (the route reaches them all).
 */
export const allow =
  (scope: Scope, options: { everyChannel?: boolean } = {}): MiddlewareHandler =>
  async (c, next) => {
    refuseUnless(c.var.principal, scope, c.req.param("channel"), options.everyChannel ?? false);
    await next();
  };

/**
 * `allow`'s check for a channel a route finds in its body or in what it loaded (a schedule's),
 * not in its path: 403 unless the principal holds `scope` and may use `channel`.
 */
export function allowChannel(principal: Principal, scope: Scope, channel: string): void {
  refuseUnless(principal, scope, channel, false);
}

function refuseUnless(
  principal: Principal,
  scope: Scope,
  channel: string | undefined,
  everyChannel: boolean,
): void {
  if (principal.kind === "root") return;
  const { key } = principal;
  if (!hasScope(principal, scope)) {
    throw new Forbidden(
      `key "${key.name}" lacks the "${scope}" scope this route needs (it has: ${key.scopes.join(", ")})`,
    );
  }
  if (channel !== undefined && !canSee(principal, channel)) {
    throw new Forbidden(
      `key "${key.name}" may not use channel "${channel}" (its channels: ${key.channels.join(", ")})`,
    );
  }
  if (everyChannel && !allChannels(principal)) {
    throw new Forbidden(
      `key "${key.name}" is limited to channels ${key.channels.join(", ")}; this route reaches ` +
        'every channel and needs a key with channels ["*"]',
    );
  }
}

/**
 * What a route definition spreads in (createRoute({...needs("read"), ...})): the `allow`
 * middleware, first, then any of the route's own; and the scope, for the OpenAPI document
 * (`x-scope`, and in words in `description`).
 */
export function needs(
  scope: Scope,
  options: { everyChannel?: boolean } = {},
  ...then: MiddlewareHandler[]
) {
  const where = options.everyChannel ? ' on every channel (a key with channels ["*"])' : "";
  return {
    middleware: [allow(scope, options), ...then],
    description: `Needs the \`${scope}\` scope${where} (or API_TOKEN); \`admin\` holds every scope.`,
    "x-scope": scope,
  };
}
