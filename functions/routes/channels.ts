// Channels: publish, list, inspect, read history.

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { canSee } from "../../shared/api-keys.ts";
import { MAX_DELAY_MS } from "../../shared/delayed.ts";
import { InvalidInput, NotFound } from "../../shared/errors.ts";
import { totals } from "../../shared/storage.ts";
import {
  channelInfo,
  listChannels,
  publish,
  readHistory,
  setRetention,
} from "../../shared/streams.ts";
import { parseTraceContext } from "../../shared/trace.ts";
import { needs } from "../auth.ts";
import { encodeData } from "../message-data.ts";
import {
  bodyErrors,
  ChannelInfo,
  ChannelList,
  ChannelParams,
  commonErrors,
  HistoryPage,
  HistoryQuery,
  json,
  notFoundError,
  PublishBody,
  PublishedMany,
  PublishedOne,
  PublishHeaders,
  RetentionChange,
  storageError,
  tooLarge,
} from "../schemas.ts";
import type { AppEnv } from "../types.ts";

const publishRoute = createRoute({
  method: "post",
  path: "/v1/channels/{channel}/messages",
  operationId: "publish",
  summary: "Publish one message ({data, type?}) or a batch ({messages: [...]})",
  ...needs("publish"),
  request: {
    params: ChannelParams,
    headers: PublishHeaders,
    body: { content: { "application/json": { schema: PublishBody } }, required: true },
  },
  responses: {
    201: json(
      z.union([PublishedOne, PublishedMany]),
      "Appended (delayed messages: stored, to enter when due); ids in order",
    ),
    200: json(z.union([PublishedOne, PublishedMany]), "Idempotency-Key seen within 24 h"),
    ...commonErrors,
    ...bodyErrors,
    ...storageError,
  },
});

const listRoute = createRoute({
  method: "get",
  path: "/v1/channels",
  operationId: "channels.list",
  ...needs("read"),
  summary: "Every channel with its length, subscriptions, last id and size; and their totals",
  responses: {
    200: json(ChannelList, "The channels"),
    ...commonErrors,
  },
});

const getRoute = createRoute({
  method: "get",
  path: "/v1/channels/{channel}",
  operationId: "channels.get",
  summary: "One channel",
  ...needs("read"),
  request: { params: ChannelParams },
  responses: { 200: json(ChannelInfo, "The channel"), ...commonErrors, ...notFoundError },
});

const patchRoute = createRoute({
  method: "patch",
  path: "/v1/channels/{channel}",
  operationId: "channels.setRetention",
  ...needs("admin"),
  summary: "Change a channel's retention",
  request: {
    params: ChannelParams,
    body: { content: { "application/json": { schema: RetentionChange } }, required: true },
  },
  responses: {
    200: json(ChannelInfo, "The channel, with its new retention"),
    ...commonErrors,
    ...notFoundError,
    ...tooLarge,
    415: bodyErrors[415],
  },
});

const historyRoute = createRoute({
  method: "get",
  path: "/v1/channels/{channel}/messages",
  operationId: "history",
  ...needs("read"),
  summary: "The channel's messages, oldest first, paged with `after`",
  request: { params: ChannelParams, query: HistoryQuery },
  responses: { 200: json(HistoryPage, "A page of messages"), ...commonErrors, ...notFoundError },
});

/**
 * When a message enters its channel (ms), from its `delayMs` or `notBefore`; undefined: now (so is
 * a time past). Refuses a notBefore more than MAX_DELAY_MS ahead, naming the field.
 */
function dueTime(
  delay: { delayMs?: number | undefined; notBefore?: string | undefined },
  field: string,
  now: number,
): number | undefined {
  if (delay.delayMs !== undefined) return delay.delayMs > 0 ? now + delay.delayMs : undefined;
  if (delay.notBefore === undefined) return undefined;
  const at = Date.parse(delay.notBefore);
  if (at - now > MAX_DELAY_MS) {
    throw new InvalidInput(
      `body.${field}notBefore: is more than 7 days (${MAX_DELAY_MS} ms) ahead; a message waits at most that long`,
    );
  }
  return at > now ? at : undefined;
}

export function channelRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(publishRoute, async (c) => {
      const { channel } = c.req.valid("param");
      const body = c.req.valid("json");
      const headers = c.req.valid("header");
      const idempotencyKey = headers["idempotency-key"];
      // An invalid traceparent is ignored, as if none came (W3C); with none, each message's
      // trace is derived from its id and stored nowhere (shared/trace.ts derivedTrace).
      const trace = parseTraceContext(headers.traceparent, headers.tracestate) ?? undefined;
      const { config, db } = c.var;
      const batch = "messages" in body;
      const now = Date.now();
      const messages = (batch ? body.messages : [body]).map((m, i) => {
        const field = batch ? `messages[${i}].` : "";
        const data = encodeData(m.data, `${field}data`, config.maxMessageBytes);
        // A message's own delay, else the batch's.
        const own = m.delayMs !== undefined || m.notBefore !== undefined;
        const dueAt = own ? dueTime(m, field, now) : dueTime(body, "", now);
        return { type: m.type, data, dueAt, orderingKey: m.orderingKey };
      });

      const result = await publish(db, channel, messages, {
        idempotencyKey,
        now,
        retention: config.retention,
        trace,
      });
      if (!result.duplicate && result.woken.length > 0 && config.kickOnPublish) {
        c.executionCtx.waitUntil(c.var.delivery.kick(channel, result.woken));
      }
      if (!result.duplicate && result.timerAt !== null) {
        c.executionCtx.waitUntil(c.var.delivery.timer("delay", channel, result.timerAt));
      }
      if (result.duplicate) c.header("Idempotent-Replayed", "true");
      const status = result.duplicate ? 200 : 201;
      return batch ? c.json({ ids: result.ids }, status) : c.json({ id: result.ids[0]! }, status);
    })
    .openapi(listRoute, async (c) => {
      const { principal } = c.var;
      const channels = await listChannels(c.var.db, (name) => canSee(principal, name));
      return c.json({ channels, totals: totals(channels) }, 200);
    })
    .openapi(getRoute, async (c) => {
      const { channel } = c.req.valid("param");
      const info = await channelInfo(c.var.db, channel, c.var.config.retention);
      if (!info) throw new NotFound(`no channel named "${channel}"`, "channel_not_found");
      return c.json(info, 200);
    })
    .openapi(patchRoute, async (c) => {
      const { channel } = c.req.valid("param");
      const { retention } = c.req.valid("json");
      const { db, config } = c.var;
      const missing = () => new NotFound(`no channel named "${channel}"`, "channel_not_found");
      const set = await setRetention(db, channel, retention, config.retention, Date.now());
      if (!set) throw missing();
      const info = await channelInfo(db, channel, config.retention);
      if (!info) throw missing();
      return c.json(info, 200);
    })
    .openapi(historyRoute, async (c) => {
      const { channel } = c.req.valid("param");
      const { after, limit } = c.req.valid("query");
      const page = await readHistory(
        c.var.db,
        channel,
        { after, limit },
        c.var.config.maxMessageBytes,
      );
      if (!page) throw new NotFound(`no channel named "${channel}"`, "channel_not_found");
      const messages = page.messages.map((m) => ({ ...m, data: JSON.parse(m.data) }));
      return c.json({ messages, next: page.next }, 200);
    });
}
