// @streamhook/client: the typed client of the streamhook API (publisher side) and the webhook
// receiver's helpers (also alone, as @streamhook/client/webhooks: webhooks.ts). Runs on Node
// (>= 20), Cloudflare Workers, Deno and Bun: it needs fetch and Web Crypto, nothing of Node. See
// client/README.md.
export type { Api } from "./api.ts";
export type {
  BatchOptions,
  Channel,
  ChannelDeleted,
  ChannelList,
  DelayedMessage,
  HistoryOptions,
  Message,
  NewMessage,
  PublishOptions,
  RetentionChange,
  StreamhookClient,
  StreamhookClientOptions,
} from "./client.ts";
export { createStreamhookClient } from "./client.ts";
export { type ApiErrorBody, StreamhookError } from "./errors.ts";
export { type Clock, parseRetryAfter, type RetryOptions } from "./retry.ts";
export type {
  NewSchedule,
  Schedule,
  ScheduleChange,
  ScheduleListOptions,
} from "./schedules.ts";
export type { components, paths, webhooks } from "./schema.d.ts";
export type {
  Attempt,
  AttemptOptions,
  DeadLetter,
  NewSubscription,
  PulledMessage,
  PullOptions,
  Replaying,
  Subscription,
  SubscriptionChange,
  SubscriptionWithSecret,
} from "./subscriptions.ts";
export {
  type HeadersLike,
  respond,
  type VerifyOptions,
  verifyWebhook,
  type WebhookAnswer,
  type WebhookBatch,
  type WebhookMessage,
  WebhookVerificationError,
} from "./webhooks.ts";
