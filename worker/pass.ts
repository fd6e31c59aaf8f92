// A delivery pass: find what is due, take the leases, visit each subscription.
//
//   findDue     one ZRANGE over the schedule: the whole cost of an idle pass, however many
//               subscriptions exist
//   load        the subscriptions' settings (HMGET per channel) and schedules (one ZMSCORE),
//               in one round trip
//   lease       SET NX PX per subscription, in one round trip: a subscription another pass is
//               delivering is skipped (that pass looks again before it lets go)
//   visit       up to PASS_CONCURRENCY subscriptions at once (visit.ts)
//
// The cron runs a full pass; a publish kicks the subscribers it woke, with what the publish
// already read, so a healthy subscriber gets the message well under a second later.

import type { Config } from "../shared/config.ts";
import type { PassSummary, SubscriptionSummary } from "../shared/delivery.ts";
import { unitName } from "../shared/keys.ts";
import type { Db } from "../shared/redis.ts";
import {
  acquireLeases,
  dueUnits,
  schedulesOf,
  type UnitSchedule,
  unschedule,
} from "../shared/schedule.ts";
import type { WokenSubscriber } from "../shared/streams.ts";
import { parseSubscription, type Subscription } from "../shared/subscription.ts";
import { loadSubscriptions } from "../shared/subscriptions.ts";
import { Budget } from "./budget.ts";
import { visit } from "./visit.ts";

// A lease outlives the whole visit: the pass budget, plus the subscription's webhook timeout (a
// batch started just before the deadline), plus room for the last round trips. Shorter, and a
// slow POST could be sent twice by the next pass.
const LEASE_MARGIN_MS = 5_000;
const leaseMs = (config: Config, sub: Subscription) =>
  config.passBudgetMs + sub.timeoutMs + LEASE_MARGIN_MS;

export async function runPass(db: Db, config: Config): Promise<PassSummary> {
  const budget = new Budget(config);
  const due = await dueUnits(db, Date.now(), config.passMaxSubscriptions * 4);
  budget.spend();
  const wanted = new Map<string, { channel: string; name: string }>();
  for (const { unit } of due) {
    if (wanted.size >= config.passMaxSubscriptions) break;
    wanted.set(`${unit.channel}/${unit.subscription}`, {
      channel: unit.channel,
      name: unit.subscription,
    });
  }
  const subs = await load(db, [...wanted.values()]);
  budget.spend();
  return deliverAll(db, config, budget, subs, false);
}

/** Delivers to the subscribers a publish woke; their settings came back with the publish. */
export async function kick(
  db: Db,
  config: Config,
  channel: string,
  woken: WokenSubscriber[],
): Promise<PassSummary> {
  const now = Date.now();
  const subs = woken.map((w) => {
    const sub = parseSubscription(channel, w.name, w.json, false);
    const schedules = new Map<string, UnitSchedule>([
      [unitName({ channel, subscription: w.name, kind: "main" }), { wake: now, retry: w.retryAt }],
    ]);
    return { sub, schedules };
  });
  // A woken subscriber's wake member was absent, so its last visit closed cleanly and its
  // pending list is exactly what its retry member says: empty when there is none.
  return deliverAll(db, config, new Budget(config, now), subs, true);
}

/** Delivers to one subscription now (after a replay, a redrive, a resume). */
export async function wake(db: Db, config: Config, channel: string, name: string) {
  const subs = await load(db, [{ channel, name }]);
  return deliverAll(db, config, new Budget(config), subs, false);
}

interface Loaded {
  sub: Subscription;
  schedules: Map<string, UnitSchedule>;
}

// Settings and schedules in one round trip (auto-pipelined). Subscriptions that are gone or
// paused have their schedule dropped: resume and create put it back.
async function load(db: Db, wanted: { channel: string; name: string }[]): Promise<Loaded[]> {
  const byChannel = new Map<string, string[]>();
  for (const w of wanted) byChannel.set(w.channel, [...(byChannel.get(w.channel) ?? []), w.name]);
  const [schedules, ...perChannel] = await Promise.all([
    schedulesOf(db, wanted),
    ...[...byChannel].map(([channel, names]) => loadSubscriptions(db, channel, names)),
  ]);
  const loaded: Loaded[] = [];
  const stale: { channel: string; name: string }[] = [];
  [...byChannel].forEach(([channel, names], c) => {
    names.forEach((name, i) => {
      const sub = perChannel[c]?.[i];
      if (sub && !sub.paused) loaded.push({ sub, schedules });
      else stale.push({ channel, name });
    });
  });
  await unschedule(db, stale);
  return loaded;
}

async function deliverAll(
  db: Db,
  config: Config,
  budget: Budget,
  subs: Loaded[],
  pendingKnownEmptyWhenNoRetry: boolean,
): Promise<PassSummary> {
  const token = crypto.randomUUID();
  const acquiredAt = Date.now();
  const wanted = subs.map(({ sub }) => ({
    channel: sub.channel,
    name: sub.name,
    ttlMs: leaseMs(config, sub),
  }));
  const leased = await acquireLeases(db, wanted, token);
  if (subs.length > 0) budget.spend();
  const work = subs.flatMap((item, i) => (leased[i] ? [{ ...item, ttlMs: wanted[i]!.ttlMs }] : []));
  const summaries: SubscriptionSummary[] = [];
  const next = async (): Promise<void> => {
    const item = work.shift();
    if (!item) return;
    const main = item.schedules.get(
      unitName({ channel: item.sub.channel, subscription: item.sub.name, kind: "main" }),
    );
    const pendingKnownEmpty = pendingKnownEmptyWhenNoRetry && main?.retry === null;
    const lease = { acquiredAt, ttlMs: item.ttlMs };
    summaries.push(
      await visit(db, config, budget, item.sub, item.schedules, lease, { pendingKnownEmpty }),
    );
    return next();
  };
  await Promise.all(Array.from({ length: config.passConcurrency }, next));
  return summarize(budget.startedAt, summaries);
}

function summarize(startedAt: number, subscriptions: SubscriptionSummary[]): PassSummary {
  const total = (key: "delivered" | "retried" | "deadLettered" | "filtered") =>
    subscriptions.reduce((sum, s) => sum + s[key], 0);
  return {
    startedAt: new Date(startedAt).toISOString(),
    durationMs: Date.now() - startedAt,
    delivered: total("delivered"),
    retried: total("retried"),
    deadLettered: total("deadLettered"),
    filtered: total("filtered"),
    subscriptions,
  };
}
