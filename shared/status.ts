// How a subscription's delivery is going, for the API: its delivery state ({p}:state:<ch>), its
// group's position (XINFO GROUPS: pending, last delivered id, lag) and its dead-letter count.

import { type StateFact, stateField } from "./keys.ts";
import { asArray, asFields, asNumber, asOptionalString, asString, type Db } from "./redis.ts";
import { dueMembersOf } from "./subscriptions.ts";

export interface DeliveryState {
  consecutiveFailures: number;
  lastError: string | null;
  lastErrorAt: string | null;
  lastSuccessAt: string | null;
  lastAckedId: string | null;
  /** Messages trimmed before the subscription acknowledged them (MAX_UNDELIVERED_AGE_MS). */
  expired: number;
  lastExpiredAt: string | null;
  /** The first failed request after the last success, while it keeps failing. */
  failingSince: string | null;
  /** When it was disabled for failing DISABLE_AFTER_MS (it is paused until resumed). */
  disabledAt: string | null;
  /** Dead letters trimmed for age (DEAD_LETTER_MAX_AGE_MS), ever. */
  deadLettersExpired: number;
  /** Dead letters trimmed for count (DEAD_LETTER_MAX_MESSAGES), ever. */
  deadLettersDropped: number;
  /** The window of requests in flight as stored (lua/take.ts); null: never moved. */
  concurrency: number | null;
}

export interface GroupInfo {
  pending: number;
  lastDeliveredId: string | null;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after a replay). */
  lag: number | null;
}

export interface SubscriptionStatus {
  state: DeliveryState;
  group: GroupInfo;
  deadLetters: number;
  /** The earliest of its units' wake and retry times in {p}:due; null when nothing is scheduled. */
  nextAttemptAt: string | null;
}

/** Delivery state, group position and dead-letter count of each subscription, by name. */
export async function loadStatuses(
  db: Db,
  channel: string,
  subs: { name: string; group: string }[],
): Promise<Map<string, SubscriptionStatus>> {
  const names = subs.map((s) => s.name);
  const { keys } = db;
  const pipeline = db.redis.pipeline();
  pipeline.hgetall(keys.state(channel));
  pipeline.xinfo(keys.channel(channel), { type: "GROUPS" });
  for (const name of names) pipeline.xlen(keys.deadLetters(channel, name));
  // Every due member of every subscription, in one ZMSCORE.
  const members = names.map((name) => dueMembersOf(channel, name));
  if (names.length > 0) pipeline.zmscore(keys.due(), members.flat());
  // keepErrors: XINFO GROUPS fails on a channel whose stream is gone; the rest still holds.
  const replies = await pipeline.exec({ keepErrors: true });
  const state = asFields(replies[0]?.result);
  const groups = replies[1]?.error ? new Map<string, GroupInfo>() : parseGroups(replies[1]?.result);
  const scores = asArray(replies[2 + names.length]?.result ?? []);
  const out = new Map<string, SubscriptionStatus>();
  names.forEach((name, i) => {
    const fact = (f: StateFact) => state[stateField(name, f)] ?? null;
    const time = (f: StateFact) => {
      const ms = fact(f);
      return ms === null ? null : new Date(Number(ms)).toISOString();
    };
    out.set(name, {
      state: {
        consecutiveFailures: Number(fact("failures") ?? 0),
        lastError: fact("lastError"),
        lastErrorAt: time("lastErrorAt"),
        lastSuccessAt: time("lastSuccessAt"),
        lastAckedId: fact("lastAckedId"),
        expired: Number(fact("expired") ?? 0),
        lastExpiredAt: time("lastExpiredAt"),
        failingSince: time("failingSince"),
        disabledAt: time("disabledAt"),
        deadLettersExpired: Number(fact("deadLettersExpired") ?? 0),
        deadLettersDropped: Number(fact("deadLettersDropped") ?? 0),
        concurrency: fact("concurrency") === null ? null : Number(fact("concurrency")),
      },
      group: groups.get(subs[i]!.group) ?? { pending: 0, lastDeliveredId: null, lag: null },
      deadLetters: asNumber(replies[2 + i]?.result ?? 0),
      nextAttemptAt: earliest(scores, i * DUE_MEMBERS, DUE_MEMBERS),
    });
  });
  return out;
}

/** Due members per subscription (dueMembersOf: wake and retry of its two units). */
const DUE_MEMBERS = 4;

function earliest(scores: unknown[], from: number, count: number): string | null {
  const times = scores
    .slice(from, from + count)
    .filter((s) => s !== null && s !== undefined)
    .map((s) => Number(s));
  return times.length === 0 ? null : new Date(Math.min(...times)).toISOString();
}

/** XINFO GROUPS as group name -> pending, last delivered id, lag. */
export function parseGroups(value: unknown): Map<string, GroupInfo> {
  const out = new Map<string, GroupInfo>();
  for (const raw of asArray(value)) {
    const flat = asArray(raw);
    const info: Record<string, unknown> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) info[asString(flat[i])] = flat[i + 1];
    const delivered = asOptionalString(info["last-delivered-id"]);
    out.set(asString(info.name), {
      pending: asNumber(info.pending ?? 0),
      // "0-0": the group has delivered nothing yet.
      lastDeliveredId: delivered === "0-0" ? null : delivered,
      lag: info.lag === null || info.lag === undefined ? null : asNumber(info.lag),
    });
  }
  return out;
}
