// The subscription methods of the client (client.ts): manage subscriptions, read a push
// subscription's attempt log, pull from pull subscriptions, and handle dead letters. Each is one
// request (pages of attempts and of dead letters aside).

import type { Api } from "./api.ts";
import { ok } from "./errors.ts";
import type { components } from "./schema.d.ts";

type Schemas = components["schemas"];
export type Subscription = Schemas["Subscription"];
export type SubscriptionWithSecret = Schemas["SubscriptionWithSecret"];
export type NewSubscription = Schemas["CreateSubscription"];
export type SubscriptionChange = Schemas["UpdateSubscription"];
export type Replaying = Schemas["Replaying"];
export type PullOptions = Schemas["Pull"];
export type PulledMessage = Schemas["PulledMessage"];
export type DeadLetter = Schemas["DeadLetter"];
/** One webhook request of a push subscription, from its attempt log. */
export type Attempt = Schemas["Attempt"];

export interface AttemptOptions {
  /** Start after this record's `id` (exclusive): older records only; default: the newest. */
  after?: string;
  /** Records per request, 1-1000; default 100. */
  pageSize?: number;
  signal?: AbortSignal;
}

const one = "/v1/channels/{channel}/subscriptions/{name}";

export function subscriptionMethods(api: Api) {
  const at = (channel: string, name: string) => ({ params: { path: { channel, name } } });

  return {
    subscriptions: {
      /** Push (`url`) or pull (`mode: "pull"`); the answer shows the signing secret, only now. */
      create: (channel: string, body: NewSubscription): Promise<SubscriptionWithSecret> =>
        ok(
          api.POST("/v1/channels/{channel}/subscriptions", {
            params: { path: { channel } },
            body,
          }),
        ),
      list: async (channel: string): Promise<Subscription[]> =>
        (
          await ok(
            api.GET("/v1/channels/{channel}/subscriptions", { params: { path: { channel } } }),
          )
        ).subscriptions,
      get: (channel: string, name: string): Promise<Subscription> =>
        ok(api.GET(one, at(channel, name))),
      update: (channel: string, name: string, change: SubscriptionChange): Promise<Subscription> =>
        ok(api.PATCH(one, { ...at(channel, name), body: change })),
      delete: async (channel: string, name: string): Promise<void> => {
        await ok(api.DELETE(one, at(channel, name)));
      },
      /** A new secret; the old one keeps signing beside it for 24 h. */
      rotateSecret: (channel: string, name: string): Promise<SubscriptionWithSecret> =>
        ok(api.POST(`${one}/rotate-secret`, at(channel, name))),
      /** Delivers again from "earliest", a message id or an ISO-8601 time (inclusive). */
      replay: (channel: string, name: string, from: string): Promise<Replaying> =>
        ok(api.POST(`${one}/replay`, { ...at(channel, name), body: { from } })),
      /**
       * The subscription's webhook requests from its attempt log (about the last 1,000), newest
       * first, fetched a page at a time as the loop goes on. A pull subscription's has none.
       */
      async *attempts(
        channel: string,
        name: string,
        o: AttemptOptions = {},
      ): AsyncGenerator<Attempt, void> {
        let after = o.after;
        for (;;) {
          const page = await ok(
            api.GET(`${one}/attempts`, {
              params: { path: { channel, name }, query: { after, limit: o.pageSize } },
              signal: o.signal ?? null,
            }),
          );
          yield* page.attempts;
          if (page.next === null) return;
          after = page.next;
        }
      },

      /**
       * Leases up to `max` messages to `consumer` for `visibilityTimeoutMs`; ack them after. With
       * `waitMs`, waits that long for a message when none is there (`signal` ends the wait).
       */
      pull: async (
        channel: string,
        name: string,
        { signal, ...body }: PullOptions & { signal?: AbortSignal } = {},
      ): Promise<PulledMessage[]> =>
        (await ok(api.POST(`${one}/pull`, { ...at(channel, name), body, signal: signal ?? null })))
          .messages,
      /** Done with these; answers how many were pending. */
      ack: async (channel: string, name: string, ids: string[]): Promise<number> =>
        (await ok(api.POST(`${one}/ack`, { ...at(channel, name), body: { ids } }))).acked,
      /** Visible again, now or after `delayMs`. */
      nack: async (
        channel: string,
        name: string,
        ids: string[],
        o: { delayMs?: number; consumer?: string } = {},
      ): Promise<number> =>
        (await ok(api.POST(`${one}/nack`, { ...at(channel, name), body: { ids, ...o } }))).nacked,
      /** The leases now end `visibilityTimeoutMs` from now. */
      extend: async (
        channel: string,
        name: string,
        ids: string[],
        o: { visibilityTimeoutMs: number; consumer?: string },
      ): Promise<number> =>
        (await ok(api.POST(`${one}/extend`, { ...at(channel, name), body: { ids, ...o } })))
          .extended,
    },

    deadLetters: {
      /** The subscription's dead letters, oldest first, a page at a time as the loop goes on. */
      async *list(
        channel: string,
        name: string,
        o: { after?: string; pageSize?: number } = {},
      ): AsyncGenerator<DeadLetter, void> {
        let after = o.after;
        for (;;) {
          const page = await ok(
            api.GET(`${one}/dead-letters`, {
              params: { path: { channel, name }, query: { after, limit: o.pageSize } },
            }),
          );
          yield* page.messages;
          if (page.next === null) return;
          after = page.next;
        }
      },
      /** Delivers them again (all, or these ids) to this subscription only. */
      redrive: (channel: string, name: string, ids?: string[]) =>
        ok(
          api.POST(`${one}/dead-letters/redrive`, {
            ...at(channel, name),
            body: ids === undefined ? {} : { ids },
          }),
        ),
      purge: async (channel: string, name: string): Promise<number> =>
        (await ok(api.DELETE(`${one}/dead-letters`, at(channel, name)))).purged,
    },
  };
}
