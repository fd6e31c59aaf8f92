// A delivery pass: find what is due, load it, visit each subscription.
//
//   findDue     one ZRANGE over the schedule, earliest first: the whole cost of an idle pass,
//               however many subscriptions exist
//   load        the subscriptions' settings (HMGET per channel) and schedules (one ZMSCORE), in
//               one round trip
//   visit       up to PASS_CONCURRENCY subscriptions at once, in the order they came due; each
//               takes its own lease when it starts (visit.ts)
//
// Every due unit is served in turn: a unit the budget stops moves to the back of the schedule
// (its wake member to now), and the ones the pass did not reach keep their earlier time, so the
// next pass starts with them.
//
// The cron runs a full pass; a publish kicks the subscribers it woke, with what the publish
// already read, so a healthy subscriber gets the message well under a second later.

import type { Config } from "../shared/config.ts";
import type { PassSummary, SubscriptionSummary } from "../shared/delivery.ts";
import { unitName } from "../shared/keys.ts";
import type { Db } from "../shared/redis.ts";
import type { WokenSubscriber } from "../shared/streams.ts";
import { parseSubscription } from "../shared/subscription.ts";
import { Budget } from "./budget.ts";
import { dueUnits, type Loaded, load, type UnitSchedule } from "./schedule.ts";
import { visit } from "./visit.ts";

export type Clock = () => number;

export async function runPass(db: Db, config: Config, clock: Clock): Promise<PassSummary> {
  const budget = new Budget(config, clock());
  const due = await dueUnits(db, budget.startedAt, config.passMaxSubscriptions * 4);
  budget.spend();
  const wanted = new Map<string, { channel: string; name: string }>();
  for (const { unit } of due) {
    if (wanted.size >= config.passMaxSubscriptions) break;
    wanted.set(`${unit.channel}/${unit.subscription}`, {
      channel: unit.channel,
      name: unit.subscription,
    });
  }
  if (wanted.size === 0) return summarize(budget.startedAt, clock(), []);
  const subs = await load(db, [...wanted.values()]);
  budget.spend();
  return deliverAll({ db, config, budget, clock }, subs, false);
}

/** Delivers to the subscribers a publish woke; their settings came back with the publish. */
export async function kick(
  db: Db,
  config: Config,
  clock: Clock,
  channel: string,
  woken: WokenSubscriber[],
): Promise<PassSummary> {
  const now = clock();
  const subs = woken.map((w) => {
    const sub = parseSubscription(channel, w.name, w.json, false);
    const main = unitName({ channel, subscription: w.name, kind: "main" });
    const schedules = new Map<string, UnitSchedule>([[main, { wake: now, retry: w.retryAt }]]);
    return { sub, schedules };
  });
  // A woken subscriber's wake member was absent, so its last visit closed cleanly: its pending
  // list is empty unless its retry member says otherwise (then deliverUnit looks).
  return deliverAll({ db, config, budget: new Budget(config, now), clock }, subs, true);
}

/** Delivers to one subscription now (after a replay, a redrive, a resume). */
export async function wake(db: Db, config: Config, clock: Clock, channel: string, name: string) {
  const budget = new Budget(config, clock());
  const subs = await load(db, [{ channel, name }]);
  return deliverAll({ db, config, budget, clock }, subs, false);
}

async function deliverAll(
  ctx: { db: Db; config: Config; budget: Budget; clock: Clock },
  subs: Loaded[],
  kicked: boolean,
): Promise<PassSummary> {
  const queue = [...subs];
  const summaries: SubscriptionSummary[] = [];
  const worker = async (): Promise<void> => {
    for (let item = queue.shift(); item; item = queue.shift()) {
      const main = item.schedules.get(
        unitName({ channel: item.sub.channel, subscription: item.sub.name, kind: "main" }),
      );
      const pendingKnownEmpty = kicked && main?.retry === null;
      const summary = await visit(ctx, item, { pendingKnownEmpty });
      if (summary) summaries.push(summary);
    }
  };
  await Promise.all(Array.from({ length: ctx.config.passConcurrency }, worker));
  return summarize(ctx.budget.startedAt, ctx.clock(), summaries);
}

function summarize(
  startedAt: number,
  now: number,
  subscriptions: SubscriptionSummary[],
): PassSummary {
  const total = (key: "delivered" | "retried" | "deadLettered" | "filtered") =>
    subscriptions.reduce((sum, s) => sum + s[key], 0);
  return {
    startedAt: new Date(startedAt).toISOString(),
    durationMs: now - startedAt,
    delivered: total("delivered"),
    retried: total("retried"),
    deadLettered: total("deadLettered"),
    filtered: total("filtered"),
    subscriptions,
  };
}
