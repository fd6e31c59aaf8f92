// Pulling from a pull subscription: pull, ack, nack, extend (functions/pull.ts is the policy,
// shared/engine/ the mechanism: visibility timeouts, redelivery, dead letters; each call's cost is
// in their headers). What an isolate keeps per subscription, between pulls (the settings, when a
// pull last looked for expired leases, the largest message seen): functions/pull-settings.ts.

import { createRoute, OpenAPIHono, type z } from "@hono/zod-openapi";
import type { TypedResponse } from "hono";
import type { JSONParsed } from "hono/utils/types";
import { deadLetterBounds } from "../../shared/engine/dead-letters.ts";
import {
  channelQueue,
  type Queue,
  redriveQueue,
  splitIds,
  WAITING_ROOM,
} from "../../shared/engine/queue.ts";
import { ack, nack } from "../../shared/engine/settle.ts";
import { Conflict } from "../../shared/errors.ts";
import type { Db } from "../../shared/redis.ts";
import type { Subscription } from "../../shared/subscription.ts";
import { needs } from "../auth.ts";
import { type Pulled as PullResult, TooManyPending } from "../pull.ts";
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
import { lookNow, sizeNext, withSettings } from "../pull-settings.ts";
import { pullWaiting } from "../pull-wait.ts";
import { commonErrors, errorResponse, json } from "../schemas.ts";
import { SubscriptionParams } from "../subscription-schemas.ts";
import type { AppEnv } from "../types.ts";

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
    operationId: `subscriptions.${name}`,
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

/** Runs `call` on the ids of each queue they belong to (1 command when all are in one); the sum. */
async function inQueues(
  db: Db,
  sub: Subscription,
  ids: string[],
  call: (q: Queue, ids: string[]) => Promise<number>,
): Promise<number> {
  const { channel, redrive } = splitIds(ids);
  const [a, b] = await Promise.all([
    channel.length > 0 ? call(channelQueue(db, sub), channel) : 0,
    redrive.length > 0 ? call(redriveQueue(db, sub), redrive) : 0,
  ]);
  return a + b;
}

export function pullRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.pull, async (c) => {
      const input = c.req.valid("json");
      const { config } = c.var;
      const pulled = await withSettings(c, async (held) => {
        const { sub } = held;
        if (sub.paused) {
          throw new Conflict(`"${sub.name}" is paused`, "subscription_paused");
        }
        try {
          const pulled = await pullWaiting(c.var.db, sub, input, {
            look: lookNow(held, Date.now(), config.pullLookEveryMs),
            largestSeen: held.largestSeen,
            redriving: held.redriving,
            maxMessageBytes: config.maxMessageBytes,
            waitMs: input.waitMs,
            deadLetters: deadLetterBounds(config),
            clock: Date.now,
            sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
          });
          sizeNext(held, pulled.largest);
          if (pulled.redriveEnded) held.redriving = false;
          return pulled;
        } catch (error) {
          if (!(error instanceof TooManyPending)) throw error;
          const acked = error.acked > 0 ? ` (its ${error.acked} acks were made)` : "";
          throw new Conflict(
            `consumer "${input.consumer}" holds ${error.pending} unacked messages, and Upstash reads no more for a consumer past 1000: ack (or nack) some, or pull with a smaller max${acked}`,
            "too_many_pending",
          );
        }
      });
      return jsonText<z.infer<typeof Pulled>>(pulledJson(pulled));
    })
    .openapi(routes.ack, async (c) => {
      const { ids } = c.req.valid("json");
      const acked = await withSettings(c, (held) =>
        inQueues(c.var.db, held.sub, ids, (q, some) => ack(c.var.db, q, some)),
      );
      return c.json({ acked }, 200);
    })
    .openapi(routes.nack, async (c) => {
      const { ids, delayMs } = c.req.valid("json");
      const nacked = await withSettings(c, async (held) => {
        const n = await inQueues(c.var.db, held.sub, ids, (q, some) =>
          nack(c.var.db, q, WAITING_ROOM, some, delayMs),
        );
        held.lookedAt = 0; // a message nacked now is handed out by the next pull here
        return n;
      });
      return c.json({ nacked }, 200);
    })
    .openapi(routes.extend, async (c) => {
      const { ids, visibilityTimeoutMs } = c.req.valid("json");
      // Both wait with the holder (functions/pull.ts), whichever consumer pulled them.
      const extended = await withSettings(c, (held) =>
        inQueues(c.var.db, held.sub, ids, (q, some) =>
          nack(c.var.db, q, WAITING_ROOM, some, visibilityTimeoutMs),
        ),
      );
      return c.json({ extended }, 200);
    });
}

/**
 * A 200 whose JSON text is built by hand, typed as the route's schema (`T`) so the route still
 * type-checks against its OpenAPI definition: c.json would serialize the value itself.
 */
const jsonText = <T>(text: string) =>
  new Response(text, {
    headers: { "content-type": "application/json" },
  }) as unknown as TypedResponse<JSONParsed<T>, 200, "json">;

/**
 * The answer to a pull, as JSON text. The messages' texts come ready and joined from the take
 * (lua/encode.ts), each one's data being the JSON text publish stored: parsing and serializing
 * per message was most of a pull's time here.
 */
const pulledJson = ({ messages, acked }: PullResult) =>
  `{"messages":[${messages.text}],"acked":${acked}}`;
