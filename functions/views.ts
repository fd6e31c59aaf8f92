// What the API shows of a subscription: its settings and how delivery is going (lag, pending,
// dead letters, failures), never its secrets; and of a schedule, with its next and last run.

import { type HeldKey, heldKeys } from "../shared/engine/lanes.ts";
import type { Db } from "../shared/redis.ts";
import type { ScheduleState } from "../shared/schedules.ts";
import { loadStatuses, type SubscriptionStatus } from "../shared/status.ts";
import { type Subscription, windowOf } from "../shared/subscription.ts";

/** One subscription as the API and the dashboard show it. */
export type SubscriptionView = Awaited<ReturnType<typeof describe>>[number];

export async function describe(db: Db, channel: string, subs: Subscription[]) {
  const [statuses, held] = await Promise.all([
    loadStatuses(db, channel, subs),
    Promise.all(subs.map((sub) => heldKeys(db, sub))),
  ]);
  return subs.map((sub, i) => view(sub, statuses.get(sub.name)!, held[i]!));
}

/** active, paused, failing (its last request failed) or disabled (paused for failing too long). */
function statusOf(
  sub: Subscription,
  status: SubscriptionStatus,
): "active" | "paused" | "failing" | "disabled" {
  if (sub.paused) return status.state.disabledAt ? "disabled" : "paused";
  return status.state.consecutiveFailures > 0 ? "failing" : "active";
}

function view(sub: Subscription, status: SubscriptionStatus, held: HeldKey[]) {
  return {
    id: sub.id === "" ? null : sub.id,
    name: sub.name,
    channel: sub.channel,
    mode: sub.mode,
    url: sub.mode === "pull" ? null : sub.url,
    batchSize: sub.batchSize,
    maxAttempts: sub.maxAttempts,
    types: sub.types,
    timeoutMs: sub.timeoutMs,
    maxRequestsPerSecond: sub.maxRequestsPerSecond,
    maxConcurrency: sub.maxConcurrency,
    currentConcurrency:
      sub.mode === "pull" ? null : windowOf(status.state.concurrency, sub.maxConcurrency),
    ordered: sub.ordered,
    heldKeys: held,
    flowKey: sub.flow?.key ?? null,
    flowRate: sub.flow?.rate ?? null,
    flowParallelism: sub.flow?.parallelism ?? null,
    paused: sub.paused,
    status: statusOf(sub, status),
    nextAttemptAt: sub.paused ? null : status.nextAttemptAt,
    failingSince: status.state.failingSince,
    disabledAt: sub.paused ? status.state.disabledAt : null,
    disabledReason:
      sub.paused && status.state.disabledAt
        ? `every request failed from ${status.state.failingSince ?? "(unknown)"} until ${status.state.disabledAt} (DISABLE_AFTER_MS); resume it with PATCH {"paused": false}`
        : null,
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

/** One schedule as the API and the dashboard show it. */
export type ScheduleView = ReturnType<typeof scheduleView>;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function scheduleView({ schedule: s, nextRunAt, lastRunAt }: ScheduleState) {
  return {
    name: s.name,
    channel: s.channel,
    cron: s.cron,
    timezone: s.timezone,
    message: {
      type: s.message.type,
      data: JSON.parse(s.message.data) as unknown,
      ...(s.message.orderingKey === undefined ? {} : { orderingKey: s.message.orderingKey }),
    },
    paused: s.paused,
    nextRunAt: iso(nextRunAt),
    lastRunAt: iso(lastRunAt),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  };
}
