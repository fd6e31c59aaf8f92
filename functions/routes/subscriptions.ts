// Subscriptions (push and pull): create, list, inspect, change, delete, rotate the secret, replay.

import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { WebhookTargetPolicy } from "../../shared/config.ts";
import { Conflict, InvalidInput, NotFound, subscriptionNotFound } from "../../shared/errors.ts";
import { channelExists } from "../../shared/streams.ts";
import {
  generateId,
  generateSecret,
  groupName,
  SUBSCRIPTION_DEFAULTS,
  type Subscription,
} from "../../shared/subscription.ts";
import {
  createSubscription,
  deleteSubscription,
  loadChannelSubscriptions,
  mustLoadSubscription,
  replay,
  saveSubscription,
  startIdFor,
} from "../../shared/subscriptions.ts";
import { webhookTargetRefusal } from "../../shared/webhook-target.ts";
import { needs } from "../auth.ts";
import { FLOW_FIELDS, flowOfCreate, flowOfPatch } from "../flow-settings.ts";
import { forgetSettings } from "../pull-settings.ts";
import {
  ChannelParams,
  commonErrors,
  errorResponse,
  json,
  notFoundError,
  storageError,
  tooLarge,
} from "../schemas.ts";
import {
  CreateSubscriptionBody,
  ReplayBody,
  Replaying,
  SubscriptionParams,
  Subscription as SubscriptionSchema,
  SubscriptionWithSecret,
  UpdateSubscriptionBody,
} from "../subscription-schemas.ts";
import type { AppEnv } from "../types.ts";
import { describe } from "../views.ts";

// A rotated-out secret keeps signing (beside the new one) this long, so receivers can switch.
const ROTATION_GRACE_MS = 24 * 60 * 60 * 1000;

const base = "/v1/channels/{channel}/subscriptions";
const body = <T extends z.ZodType>(schema: T) => ({
  content: { "application/json": { schema } },
  required: true,
});
const conflict = { 409: errorResponse("The name is taken on this channel") };
// The schema's 400 and the target policy's, in one description (a status has one response).
const invalidOrRefused = {
  400: errorResponse(
    "invalid_request: a field fails validation (the message names it); invalid_json; url_not_allowed: the url is http, or its host is loopback, private, link-local, unique-local, multicast, unspecified, a cloud metadata endpoint or localhost (the message says which, and the variable that allows it)",
  ),
};

const routes = {
  create: createRoute({
    method: "post",
    path: base,
    operationId: "subscriptions.create",
    ...needs("subscribe"),
    summary: "Subscribe a webhook to the channel (its own consumer group)",
    request: { params: ChannelParams, body: body(CreateSubscriptionBody) },
    responses: {
      201: json(SubscriptionWithSecret, "Created; the signing secret is shown only now"),
      ...commonErrors,
      ...invalidOrRefused,
      ...tooLarge,
      ...conflict,
      ...storageError,
    },
  }),
  list: createRoute({
    method: "get",
    path: base,
    operationId: "subscriptions.list",
    ...needs("read"),
    summary: "The channel's subscribers, with their lag and pending counts",
    request: { params: ChannelParams },
    responses: {
      200: json(z.object({ subscriptions: z.array(SubscriptionSchema) }), "The subscriptions"),
      ...commonErrors,
      ...notFoundError,
    },
  }),
  get: createRoute({
    method: "get",
    path: `${base}/{name}`,
    operationId: "subscriptions.get",
    ...needs("read"),
    summary: "One subscription",
    request: { params: SubscriptionParams },
    responses: {
      200: json(SubscriptionSchema, "The subscription"),
      ...commonErrors,
      ...notFoundError,
    },
  }),
  update: createRoute({
    method: "patch",
    path: `${base}/{name}`,
    operationId: "subscriptions.update",
    ...needs("subscribe"),
    summary:
      "Change url, batchSize, maxAttempts, types, timeoutMs, maxRequestsPerSecond, maxConcurrency, ordered, the flow key and its limits; pause or resume",
    request: { params: SubscriptionParams, body: body(UpdateSubscriptionBody) },
    responses: {
      200: json(SubscriptionSchema, "Updated"),
      ...commonErrors,
      ...invalidOrRefused,
      ...tooLarge,
      ...notFoundError,
      ...storageError,
      409: errorResponse(
        "not_push_subscription: a url or a flow field given for a pull subscription; flow_incomplete: the flow fields would leave a flowKey without flowRate and flowParallelism, or either without a flowKey (the message names the field)",
      ),
    },
  }),
  remove: createRoute({
    method: "delete",
    path: `${base}/{name}`,
    operationId: "subscriptions.delete",
    ...needs("subscribe"),
    summary: "Delete the subscription, its group, its dead letters",
    request: { params: SubscriptionParams },
    responses: {
      204: { description: "Deleted" },
      ...commonErrors,
      ...notFoundError,
      409: errorResponse("subscription_changed: the name kept being taken by new subscriptions"),
    },
  }),
  rotate: createRoute({
    method: "post",
    path: `${base}/{name}/rotate-secret`,
    operationId: "subscriptions.rotateSecret",
    ...needs("subscribe"),
    summary: "New signing secret; the old one keeps signing for 24 h",
    request: { params: SubscriptionParams },
    responses: {
      200: json(SubscriptionWithSecret, "Rotated; the new secret is shown only now"),
      ...commonErrors,
      ...notFoundError,
    },
  }),
  replay: createRoute({
    method: "post",
    path: `${base}/{name}/replay`,
    operationId: "subscriptions.replay",
    ...needs("subscribe"),
    summary: "Deliver history again from an id or a time (moves the group's cursor)",
    request: { params: SubscriptionParams, body: body(ReplayBody) },
    responses: {
      200: json(Replaying, "Replaying from `replayFrom`"),
      ...commonErrors,
      ...notFoundError,
      ...tooLarge,
    },
  }),
};

/**
 * The channel's roster timer's task (shared/roster.ts): a subscriber became active; a publish
 * through another isolate's older copy of the roster may not wake it until `at`.
 */
const rosterTimer = (c: Context<AppEnv>, channel: string, at: number) =>
  c.var.delivery.timer("roster", channel, at);

const mustLoad = (c: Context<AppEnv>, channel: string, name: string) =>
  mustLoadSubscription(c.var.db, channel, name);

async function show(c: Context<AppEnv>, sub: Subscription) {
  return (await describe(c.var.db, sub.channel, [sub]))[0]!;
}

/** Throws 400 url_not_allowed when the policy refuses the URL (before anything is read or written). */
function mustAllowTarget(url: string, policy: WebhookTargetPolicy): void {
  const refusal = webhookTargetRefusal(url, policy);
  if (refusal !== null) throw new InvalidInput(refusal, "url_not_allowed");
}

function startPoint(from: string | undefined) {
  if (from === undefined || from === "latest") return startIdFor("latest");
  if (from === "earliest") return startIdFor("earliest");
  if (/^\d+-\d+$/.test(from)) return startIdFor({ id: from });
  return startIdFor({ time: Date.parse(from) });
}

export function subscriptionRoutes() {
  return new OpenAPIHono<AppEnv>()
    .openapi(routes.create, async (c) => {
      const { channel } = c.req.valid("param");
      const input = c.req.valid("json");
      const push = input.mode === "pull" ? null : input;
      const flow = push ? flowOfCreate(push) : null;
      if (push) mustAllowTarget(push.url, c.var.config.webhookTargets);
      const id = generateId();
      const mode = push ? "push" : "pull";
      const sub: Subscription = {
        mode,
        channel,
        name: input.name,
        id,
        group: groupName(input.name, id),
        url: push?.url ?? "",
        batchSize: input.batchSize ?? SUBSCRIPTION_DEFAULTS.batchSize,
        maxAttempts: input.maxAttempts ?? SUBSCRIPTION_DEFAULTS.maxAttempts,
        types: input.types ?? null,
        timeoutMs: input.timeoutMs ?? SUBSCRIPTION_DEFAULTS.timeoutMs,
        maxRequestsPerSecond: input.maxRequestsPerSecond ?? null,
        maxConcurrency: input.maxConcurrency ?? SUBSCRIPTION_DEFAULTS.maxConcurrency,
        ordered: push?.ordered ?? false,
        flow,
        secrets: push ? [{ secret: push.secret ?? generateSecret(), expiresAt: null }] : [],
        paused: false,
        createdAt: new Date().toISOString(),
      };
      const startId = startPoint(input.from);
      const { retention } = c.var.config;
      const now = Date.now();
      const created = await createSubscription(c.var.db, sub, startId, now, retention);
      if (!created) {
        throw new Conflict(
          `"${sub.name}" already subscribes to "${channel}"`,
          "subscription_exists",
        );
      }
      if (mode === "pull") return c.json(await show(c, sub), 201);
      if (startId !== "$") c.executionCtx.waitUntil(c.var.delivery.wake(channel, sub.name));
      if (created.rosterAt !== null)
        c.executionCtx.waitUntil(rosterTimer(c, channel, created.rosterAt));
      return c.json({ ...(await show(c, sub)), secret: sub.secrets[0]!.secret }, 201);
    })
    .openapi(routes.list, async (c) => {
      const { channel } = c.req.valid("param");
      if (!(await channelExists(c.var.db, channel))) {
        throw new NotFound(`no channel named "${channel}"`, "channel_not_found");
      }
      const subs = await loadChannelSubscriptions(c.var.db, channel);
      return c.json({ subscriptions: await describe(c.var.db, channel, subs) }, 200);
    })
    .openapi(routes.get, async (c) => {
      const { channel, name } = c.req.valid("param");
      return c.json(await show(c, await mustLoad(c, channel, name)), 200);
    })
    .openapi(routes.update, async (c) => {
      const { channel, name } = c.req.valid("param");
      const { paused, flowKey, flowRate, flowParallelism, ...changes } = c.req.valid("json");
      if (changes.url !== undefined) mustAllowTarget(changes.url, c.var.config.webhookTargets);
      const before = await mustLoad(c, channel, name);
      const flowChanges = { flowKey, flowRate, flowParallelism };
      const flowGiven = FLOW_FIELDS.filter((f) => flowChanges[f] !== undefined);
      // The subscription's state, not the body's shape, decides this one: a conflict.
      if (before.mode === "pull" && (changes.url !== undefined || flowGiven.length > 0)) {
        const what = changes.url !== undefined ? "a url" : "a flow key";
        throw new Conflict(
          `"${name}" is a pull subscription: it has no ${what} to change`,
          "not_push_subscription",
        );
      }
      if (before.mode === "pull" && changes.ordered === true) {
        throw new Conflict(
          `"${name}" is a pull subscription: it cannot be ordered (ordered applies to push)`,
          "not_push_subscription",
        );
      }
      const flow = flowGiven.length > 0 ? flowOfPatch(before.flow, flowChanges) : before.flow;
      const after: Subscription = {
        ...before,
        ...changes,
        flow,
        paused: paused ?? before.paused,
      };
      forgetSettings(c.var.db, channel, name);
      // Resuming, or a new URL, is worth a try now, whatever backoff the old state was in; a
      // pull subscription is never delivered to.
      const wake =
        before.mode === "push" &&
        ((before.paused && paused === false) ||
          (changes.url !== undefined && changes.url !== before.url));
      const reorder = changes.ordered !== undefined && changes.ordered !== before.ordered;
      const now = Date.now();
      const saved = await saveSubscription(c.var.db, after, { paused, wake, reorder }, now);
      if (!saved) throw subscriptionNotFound(channel, name);
      if (wake && !after.paused) c.executionCtx.waitUntil(c.var.delivery.wake(channel, name));
      if (saved.rosterAt !== null)
        c.executionCtx.waitUntil(rosterTimer(c, channel, saved.rosterAt));
      return c.json(await show(c, after), 200);
    })
    .openapi(routes.remove, async (c) => {
      const { channel, name } = c.req.valid("param");
      // The name may be taken again between the load and the delete: then load the new one.
      for (let attempt = 0; attempt < 3; attempt++) {
        const sub = await mustLoad(c, channel, name);
        forgetSettings(c.var.db, channel, name);
        const result = await deleteSubscription(c.var.db, sub);
        if (result !== "changed") return c.body(null, 204);
      }
      throw new Conflict(`"${name}" keeps being replaced; try again`, "subscription_changed");
    })
    .openapi(routes.rotate, async (c) => {
      const { channel, name } = c.req.valid("param");
      const sub = await mustLoad(c, channel, name);
      const now = Date.now();
      const secret = generateSecret();
      const kept = sub.secrets
        .map((s) => (s.expiresAt === null ? { ...s, expiresAt: now + ROTATION_GRACE_MS } : s))
        .filter((s) => s.expiresAt === null || s.expiresAt > now);
      const rotated: Subscription = { ...sub, secrets: [{ secret, expiresAt: null }, ...kept] };
      if (!(await saveSubscription(c.var.db, rotated, {}, now)))
        throw subscriptionNotFound(channel, name);
      return c.json({ ...(await show(c, rotated)), secret }, 200);
    })
    .openapi(routes.replay, async (c) => {
      const { channel, name } = c.req.valid("param");
      const { from } = c.req.valid("json");
      const sub = await mustLoad(c, channel, name);
      const replayed = await replay(c.var.db, sub, startPoint(from), Date.now());
      if (!replayed) throw subscriptionNotFound(channel, name);
      if (!sub.paused && sub.mode === "push") {
        c.executionCtx.waitUntil(c.var.delivery.wake(channel, name));
      }
      return c.json({ ...(await show(c, sub)), replayFrom: replayed.firstId }, 200);
    });
}
