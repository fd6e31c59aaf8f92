// The publisher's side: a typed client of the streamhook API, on openapi-fetch with the types
// openapi-typescript generated from the API's own OpenAPI document (client/schema.d.ts).
//
//   const streamhook = createStreamhookClient({ baseUrl, token });
//   await streamhook.publish("orders", { type: "order.created", data: { orderId: 42 } });
//   for await (const message of streamhook.history("orders")) ...
//
// Every method returns the answer's data or throws a StreamhookError (errors.ts). 429 and 503 are
// retried (retry.ts). A publish always carries an Idempotency-Key, the caller's or a fresh one, so
// a publish sent again after a 503 or a lost answer is stored once: the API answers the repeat
// with the first ids. `api` is the typed openapi-fetch client itself, for routes without a method
// here (API keys, POST /v1/deliver).

import createClient from "openapi-fetch";
import type { Api } from "./api.ts";
import { ok, unwrap } from "./errors.ts";
import { type Clock, type RetryOptions, retrying, systemClock } from "./retry.ts";
import { scheduleMethods } from "./schedules.ts";
import type { components, paths } from "./schema.d.ts";
import { subscriptionMethods } from "./subscriptions.ts";

type Schemas = components["schemas"];
export type Message = Schemas["Message"];
/**
 * A message to publish; with `delayMs` or `notBefore` (RFC 3339), a delayed message: stored at
 * once, delivered when due (its id is then a delayed id, which it carries as `delayedId`).
 */
export type NewMessage = { data: unknown; type?: string; delayMs?: number; notBefore?: string };
export type DelayedMessage = Schemas["DelayedMessage"];
export type Channel = Schemas["Channel"];
export type ChannelList = Schemas["ChannelList"];
export type ChannelDeleted = Schemas["ChannelDeleted"];
export type RetentionChange = Schemas["ChannelChange"]["retention"];

export interface StreamhookClientOptions {
  /** The Worker's URL, e.g. https://streamhook.example.workers.dev */
  baseUrl: string;
  /** API_TOKEN, or an API key's secret (sk_...). */
  token: string;
  retry?: RetryOptions;
  /** The fetch to send with; default globalThis.fetch. */
  fetch?: (request: Request) => Promise<Response>;
  /** The clock retries wait on; default the system's (tests pass their own). */
  clock?: Clock;
}

export interface PublishOptions {
  /**
   * Deduplicates the publish for 24 h on its channel: a repeat answers the first ids and stores
   * nothing (`replayed: true`). Default: a fresh random key, which covers this call's retries.
   */
  idempotencyKey?: string;
  /**
   * W3C Trace Context of the publish (e.g. from OpenTelemetry's propagation.inject): kept with
   * each message and delivered with it. Default: none, and streamhook starts a trace.
   */
  traceparent?: string;
  tracestate?: string;
  signal?: AbortSignal;
}

/** A batch's delay: every message of it that gives neither `delayMs` nor `notBefore` of its own. */
export interface BatchOptions extends PublishOptions {
  delayMs?: number;
  notBefore?: string;
}

export interface HistoryOptions {
  /** Start after this message id (exclusive); default: the oldest kept. */
  after?: string;
  /** Messages per request, 1-1000; default 100. */
  pageSize?: number;
  signal?: AbortSignal;
}

export function createStreamhookClient(options: StreamhookClientOptions) {
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const api: Api = createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.token}` },
    fetch: retrying(send, options.retry, options.clock ?? systemClock),
  });

  async function publishBody(channel: string, body: Schemas["PublishRequest"], o: PublishOptions) {
    const idempotencyKey = o.idempotencyKey ?? crypto.randomUUID();
    const answer = await api.POST("/v1/channels/{channel}/messages", {
      params: {
        path: { channel },
        header: {
          "idempotency-key": idempotencyKey,
          traceparent: o.traceparent,
          tracestate: o.tracestate,
        },
      },
      body,
      signal: o.signal ?? null,
    });
    const data = unwrap(answer);
    const replayed = answer.response.headers.get("idempotent-replayed") === "true";
    return { ids: "ids" in data ? data.ids : [data.id], replayed };
  }

  return {
    api,

    /** Appends one message; `replayed` when its Idempotency-Key had been used (nothing stored). */
    async publish(channel: string, message: NewMessage, o: PublishOptions = {}) {
      const { ids, replayed } = await publishBody(channel, message, o);
      return { id: ids[0]!, replayed };
    },

    /** Appends 1-1000 messages in order, all or nothing, in one request. */
    publishBatch(channel: string, messages: NewMessage[], o: BatchOptions = {}) {
      const { delayMs, notBefore } = o;
      return publishBody(channel, { messages, delayMs, notBefore }, o);
    },

    /** The channel's messages, oldest first, fetched a page at a time as the loop goes on. */
    async *history(channel: string, o: HistoryOptions = {}): AsyncGenerator<Message, void> {
      let after = o.after;
      for (;;) {
        const page = await ok(
          api.GET("/v1/channels/{channel}/messages", {
            params: { path: { channel }, query: { after, limit: o.pageSize } },
            signal: o.signal ?? null,
          }),
        );
        yield* page.messages;
        if (page.next === null) return;
        after = page.next;
      }
    },

    /** GET /v1/metrics: the Prometheus text exposition of the channels the key may use. */
    metrics: (o: { signal?: AbortSignal } = {}): Promise<string> =>
      ok(api.GET("/v1/metrics", { parseAs: "text", signal: o.signal ?? null })),

    channels: {
      list: (): Promise<ChannelList> => ok(api.GET("/v1/channels")),
      get: (channel: string): Promise<Channel> =>
        ok(api.GET("/v1/channels/{channel}", { params: { path: { channel } } })),
      /** Fields left out keep their value; null lifts that limit. */
      setRetention: (channel: string, retention: RetentionChange): Promise<Channel> =>
        ok(
          api.PATCH("/v1/channels/{channel}", {
            params: { path: { channel } },
            body: { retention },
          }),
        ),
      /** `force`: its subscriptions too (otherwise 409 channel_has_subscriptions while any). */
      delete: (channel: string, o: { force?: boolean } = {}): Promise<ChannelDeleted> =>
        ok(
          api.DELETE("/v1/channels/{channel}", {
            params: { path: { channel }, query: { force: o.force ? "true" : undefined } },
          }),
        ),
    },

    delayed: {
      /** The channel's delayed messages not yet due, earliest first, a page at a time. */
      async *list(
        channel: string,
        o: { after?: string; pageSize?: number; signal?: AbortSignal } = {},
      ): AsyncGenerator<DelayedMessage, void> {
        let after = o.after;
        for (;;) {
          const page = await ok(
            api.GET("/v1/channels/{channel}/delayed", {
              params: { path: { channel }, query: { after, limit: o.pageSize } },
              signal: o.signal ?? null,
            }),
          );
          yield* page.messages;
          if (page.next === null) return;
          after = page.next;
        }
      },
      /**
       * Cancels a delayed message before it is due: it is never delivered. A StreamhookError 404
       * (delayed_message_not_found) when none waits by that id (cancelled, or entered already).
       */
      cancel: async (channel: string, delayedId: string): Promise<void> => {
        await ok(
          api.DELETE("/v1/channels/{channel}/delayed/{delayedId}", {
            params: { path: { channel, delayedId } },
          }),
        );
      },
    },

    ...subscriptionMethods(api),
    ...scheduleMethods(api),
  };
}

export type StreamhookClient = ReturnType<typeof createStreamhookClient>;
