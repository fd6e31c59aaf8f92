// What the API shows of a subscription: its settings and how delivery is going (lag, pending,
// dead letters, failures). Never its secrets.

import type { Db } from "../shared/redis.ts";
import { loadStatuses, type SubscriptionStatus } from "../shared/status.ts";
import type { Subscription } from "../shared/subscription.ts";

export async function describe(db: Db, channel: string, subs: Subscription[]) {
  const statuses = await loadStatuses(db, channel, subs);
  return subs.map((sub) => view(sub, statuses.get(sub.name)!));
}

function view(sub: Subscription, status: SubscriptionStatus) {
  return {
    id: sub.id === "" ? null : sub.id,
    name: sub.name,
    channel: sub.channel,
    url: sub.url,
    batchSize: sub.batchSize,
    maxAttempts: sub.maxAttempts,
    types: sub.types,
    timeoutMs: sub.timeoutMs,
    maxRequestsPerSecond: sub.maxRequestsPerSecond,
    paused: sub.paused,
    createdAt: sub.createdAt,
    lag: status.group.lag,
    pending: status.group.pending,
    lastDeliveredId: status.group.lastDeliveredId,
    deadLetters: status.deadLetters,
    deadLettersExpired: status.state.deadLettersExpired,
    deadLettersDropped: status.state.deadLettersDropped,
    consecutiveFailures: status.state.consecutiveFailures,
    lastError: status.state.lastError,
    lastErrorAt: status.state.lastErrorAt,
    lastSuccessAt: status.state.lastSuccessAt,
    expired: status.state.expired,
    lastExpiredAt: status.state.lastExpiredAt,
  };
}
