// Pulling from a pull subscription: pull, ack, nack, extend (see shared/pull.ts for how leases
// work and what each call costs).
//
// The subscription's settings (its group, maxAttempts, types) are kept per isolate for up to
// SETTINGS_TTL_MS, so that a pull costs only its own commands and an ack its one XACK. A delete
// is seen at once (its group is gone: NOGROUP, and the settings are loaded again); a PATCH through
// this isolate at once, through another within SETTINGS_TTL_MS.

import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { Conflict, NotFound } from "../../shared/errors.ts";
import { ack, pullCount, setLease, TooManyPending } from "../../shared/pull.ts";
import { pullWaiting } from "../../shared/pull-wait.ts";
import { type Db, isReplyError } from "../../shared/redis.ts";
import type { Subscription } from "../../shared/subscription.ts";
import { loadSubscription } from "../../shared/subscriptions.ts";
import type { AppEnv } from "../app.ts";
import { needs } from "../auth.ts";
import {
  AckBody,
  Acked,
  ExtendBody,
  Extended,
  NackBody,
  Nacked,
  PullBody,
  Pulled,
} from "../pull-schemas.ts";
import { commonErrors, errorResponse, json } from "../schemas.ts";
import { SubscriptionParams } from "../subscription-schemas.ts";

const SETTINGS_TTL_MS = 5000;

const path = "/v1/channels/{channel}/subscriptions/{name}";
const body = <T extends z.ZodType>(schema: T) => ({
  content: { "application/json": { schema } },
  required: true,
});
const errors = {
  ...commonErrors,
  404: errorResponse("No such subscription"),
  409: errorResponse(
    "not_pull_subscription, subscription_paused, or (pull) too_many_pending: ack before pulling more",
  ),
};
const route = <T extends z.ZodType, R extends z.ZodType>(
  name: string,
  summary: string,
  request: T,
  response: R,
) =>
  createRoute({
    method: "post",
    path: `${path}/${name}`,
    // Pulling consumes: it moves the group's cursor and leases, like delivery does.
    ...needs("subscribe"),
    summary,
    request: { params: SubscriptionParams, body: body(request) },
    responses: { 200: json(response, "Done"), ...errors },
  });

const routes = {
  pull: route("pull", "Take messages from a pull subscription", PullBody, Pulled),
  ack: route("ack", "Acknowledge pulled messages (done with them)", AckBody, Acked),
  nack: route("nack", "Make pulled messages visible again, now or after delayMs", NackBody, Nacked),
  extend: route("extend", "Extend the visibility timeout of pulled messages", ExtendBody, Extended),
};

const cache = new WeakMap<Db["redis"], Map<string, { sub: Subscription; at: number }>>();

async function settings(db: Db, channel: string, name: string, fresh: boolean) {
  const byName = cache.get(db.redis) ?? new Map<string, { sub: Subscription; at: number }>();
  cache.set(db.redis, byName);
  const key = `${channel}/${name}`;
  const held = byName.get(key);
  if (!fresh && held && Date.now() - held.at < SETTINGS_TTL_MS) return held.sub;
  const sub = await loadSubscription(db, channel, name);
  if (!sub) {
    byName.delete(key);
    throw new NotFound(
      `no subscription "${name}" on channel "${channel}"`,
      "subscription_not_found",
    );
  }
  if (sub.mode !== "pull") {
    throw new Conflict(
      `"${name}" is a push subscription: it is delivered to its url`,
      "not_pull_subscription",
    );
  }
  byName.set(key, { sub, at: Date.now() });
  return sub;
}

/** Forgets this isolate's copy of a subscription's settings (after a PATCH or DELETE). */
export function forgetSettings(db: Db, channel: string, name: string) {
  cache.get(db.redis)?.delete(`${channel}/${name}`);
}

/** Runs `use` with the settings; once more with fresh ones when the group is gone (NOGROUP). */
async function withSettings<T>(c: Context<AppEnv>, use: (sub: Subscription) => Promise<T>) {
  const { channel, name } = c.req.param() as { channel: string; name: string };
  try {
    return await use(await settings(c.var.db, channel, name, false));
  } catch (error) {
    if (!isReplyError(error, "NOGROUP")) throw error;
    return use(await settings(c.var.db, channel, name, true));
  }
}

export function pullRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.pull, async (c) => {
      const input = c.req.valid("json");
      const { config } = c.var;
      const messages = await withSettings(c, async (sub) => {
        if (sub.paused) {
          throw new Conflict(`"${sub.name}" is paused`, "subscription_paused");
        }
        try {
          return await pullWaiting(c.var.db, sub, input, {
            count: pullCount(input.max, config.maxMessageBytes),
            waitMs: input.waitMs,
            deadLetters: {
              maxAgeMs: config.deadLetterMaxAgeMs,
              maxMessages: config.deadLetterMaxMessages,
            },
            clock: Date.now,
            sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
          });
        } catch (error) {
          if (!(error instanceof TooManyPending)) throw error;
          throw new Conflict(
            `consumer "${input.consumer}" holds ${error.pending} unacked messages, and Upstash reads no more for a consumer past 1000: ack (or nack) some, or pull with a smaller max`,
            "too_many_pending",
          );
        }
      });
      const out = messages.map((m) => ({ ...m, data: JSON.parse(m.data) as unknown }));
      return c.json({ messages: out }, 200);
    })
    .openapi(routes.ack, async (c) => {
      const { ids } = c.req.valid("json");
      const acked = await withSettings(c, (sub) => ack(c.var.db, sub, ids));
      return c.json({ acked }, 200);
    })
    .openapi(routes.nack, async (c) => {
      const { ids, delayMs, consumer } = c.req.valid("json");
      const nacked = await withSettings(c, (sub) =>
        setLease(c.var.db, sub, consumer, ids, delayMs),
      );
      return c.json({ nacked }, 200);
    })
    .openapi(routes.extend, async (c) => {
      const { ids, visibilityTimeoutMs, consumer } = c.req.valid("json");
      const extended = await withSettings(c, (sub) =>
        setLease(c.var.db, sub, consumer, ids, visibilityTimeoutMs),
      );
      return c.json({ extended }, 200);
    });
}
