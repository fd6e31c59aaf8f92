// Who may call what. Two steps, in this order, on every /v1 route:
//
//   authenticate  the bearer token is API_TOKEN (the root: every scope, every channel) or an API key's secret (1 HGET, shared/api-keys.ts); else 401
//   allow(scope)  per route: the key holds the scope (admin holds all) and may touch the route's
//                 channel; else 403 naming the missing scope or the channel. Routes that reach
//                 every channel (key management, POST /v1/deliver) also need channels ["*"]
//
// So a request with a key costs 1 command before its route runs; with API_TOKEN, none.

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
import { Forbidden } from "../shared/errors.ts";

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
