// A channel's delayed messages (shared/delayed.ts): those published with `delayMs` or `notBefore`
// that have not entered the channel yet. List them (read), cancel one (publish: whoever may
// publish a message may take it back before it is sent).

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { cancelDelayed, listDelayed } from "../../shared/delayed.ts";
import { NotFound } from "../../shared/errors.ts";
import { needs } from "../auth.ts";
import { DelayedPage, DelayedParams, DelayedQuery } from "../delayed-schemas.ts";
import { ChannelParams, commonErrors, errorResponse, json, notFoundError } from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const path = "/v1/channels/{channel}/delayed";

const routes = {
  list: createRoute({
    method: "get",
    path,
    operationId: "delayed.list",
    ...needs("read"),
    summary: "The channel's delayed messages that have not entered it yet, earliest due first",
    request: { params: ChannelParams, query: DelayedQuery },
    responses: { 200: json(DelayedPage, "A page"), ...commonErrors, ...notFoundError },
  }),
  cancel: createRoute({
    method: "delete",
    path: `${path}/{delayedId}`,
    operationId: "delayed.cancel",
    ...needs("publish"),
    summary: "Cancel a delayed message that has not entered the channel: it is never delivered",
    request: { params: DelayedParams },
    responses: {
      204: { description: "Cancelled" },
      ...commonErrors,
      404: errorResponse(
        "delayed_message_not_found: no such delayed message waits (never published, cancelled, or it has entered the channel and is being delivered)",
      ),
    },
  }),
};

export function delayedRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.list, async (c) => {
      const { channel } = c.req.valid("param");
      const page = await listDelayed(c.var.db, channel, c.req.valid("query"));
      if (!page) throw new NotFound(`no channel named "${channel}"`, "channel_not_found");
      const messages = page.messages.map((m) => ({ ...m, data: JSON.parse(m.data) as unknown }));
      return c.json({ messages, next: page.next }, 200);
    })
    .openapi(routes.cancel, async (c) => {
      const { channel, delayedId: id } = c.req.valid("param");
      if (!(await cancelDelayed(c.var.db, channel, id))) {
        throw new NotFound(
          `no delayed message "${id}" waits on channel "${channel}": it was never published, ` +
            "was cancelled, or has entered the channel",
          "delayed_message_not_found",
        );
      }
      return c.body(null, 204);
    });
}
