// DELETE /v1/channels/{channel}: the channel and every key of it (shared/drop-channel.ts). Apart
// from routes/channels.ts because it is a lifecycle step, not a read or a publish.

import { createRoute, OpenAPIHono } from "@hono/zod-openapi";
import { dropChannel } from "../../shared/drop-channel.ts";
import { Conflict, NotFound } from "../../shared/errors.ts";
import { needs } from "../auth.ts";
import {
  ChannelDeleted,
  ChannelParams,
  commonErrors,
  DeleteChannelQuery,
  errorResponse,
  json,
  notFoundError,
} from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const deleteRoute = createRoute({
  method: "delete",
  path: "/v1/channels/{channel}",
  operationId: "channels.delete",
  ...needs("admin"),
  summary:
    "Delete the channel: its messages, registry entry and idempotency keys; with force=true its subscriptions too",
  request: { params: ChannelParams, query: DeleteChannelQuery },
  responses: {
    200: json(ChannelDeleted, "Deleted; what it held"),
    ...commonErrors,
    ...notFoundError,
    409: errorResponse(
      "channel_has_subscriptions: it has subscriptions and force=true was not given (nothing deleted); channel_changed: its subscriptions kept changing while a forced delete worked",
    ),
  },
});

export function channelDeleteRoutes() {
  return new OpenAPIHono<AppEnv>().openapi(deleteRoute, async (c) => {
    const { channel } = c.req.valid("param");
    const force = c.req.valid("query").force === "true";
    const result = await dropChannel(c.var.db, channel, { force });
    switch (result.kind) {
      case "dropped":
        return c.json(result.dropped, 200);
      case "missing":
        throw new NotFound(`no channel named "${channel}"`, "channel_not_found");
      case "subscribed": {
        const { subscriptions: names } = result;
        throw new Conflict(
          `channel "${channel}" has ${names.length} subscription(s) (${names.join(", ")}); ` +
            "delete them first, or repeat with ?force=true to delete them with the channel",
          "channel_has_subscriptions",
        );
      }
      case "changed":
        throw new Conflict(
          `the subscriptions of "${channel}" kept changing while it was being deleted; ` +
            "nothing was deleted, try again",
          "channel_changed",
        );
    }
  });
}
