// A deliverer's own writes, beside its group's (the engine's take writes those): the attempt
// log's records, riding with each round trip, and the run's report at its end. Each call, its
// cost, and what happens when its reply is lost (shared/redis.ts):
//
//   call          commands                                 reply lost
//   records       1 XADD per 10 requests since the last     again through lua/record.ts, which
//                 round trip (NOMKSTREAM, MAXLEN ~)         appends only those the log does not
//                                                           end with yet (recordAgain)
//   report        lua/report.ts: counters, delivery state,  again: a repeat finds what the first
//                 health, pause on 410                     run answered ({p}:written:<id>) and
//                                                           writes nothing

import {
  ATTEMPT_LOG_LENGTH,
  type AttemptRecord,
  RECORDS_PER_ENTRY,
  recordsEntry,
  recordValues,
} from "../shared/attempt-log.ts";
import { metricsField, pausedField, type StateFact, stateField } from "../shared/keys.ts";
import { RECORD_LUA } from "../shared/lua/record.ts";
import { REPORT_LUA } from "../shared/lua/report.ts";
import { asNumber, type Call, type Db, runScript } from "../shared/redis.ts";
import type { Subscription } from "../shared/subscription.ts";
import { counterIncrements } from "./attempts.ts";
import type { StateChange } from "./settle.ts";
import { stateWrites } from "./settle.ts";

/**
 * The XADDs of some requests' records, as calls of a batch: RECORDS_PER_ENTRY to an entry
 * (shared/attempt-log.ts), so one for the requests a take acks on a backlog.
 */
export function recordCalls(db: Db, sub: Subscription, records: AttemptRecord[]): Call[] {
  const log = db.keys.attempts(sub.channel, sub.name);
  // NOMKSTREAM: a subscription deleted meanwhile does not get its log back (subscribe makes it).
  const trim = { type: "MAXLEN", comparison: "~", threshold: ATTEMPT_LOG_LENGTH } as const;
  const calls: Call[] = [];
  for (let i = 0; i < records.length; i += RECORDS_PER_ENTRY) {
    const entry = recordsEntry(records.slice(i, i + RECORDS_PER_ENTRY));
    calls.push({ add: (p) => p.xadd(log, "*", entry, { nomkStream: true, trim }) });
  }
  return calls;
}

/** After a lost reply: the records appended unless the log holds them already. Safe to repeat. */
export async function recordAgain(db: Db, sub: Subscription, records: AttemptRecord[]) {
  if (records.length === 0) return;
  const log = db.keys.attempts(sub.channel, sub.name);
  await runScript(db.redis, RECORD_LUA, [log], records.flatMap(recordValues));
}

/** What a run's report found of the endpoint's health (lua/report.ts). */
export type Health = "failing" | "disabled" | "recovered" | null;

export interface ReportInput {
  state: StateChange;
  now: number;
  disableAfterMs: number;
  /** The subscription was failing when the run began: a success clears failingSince. */
  wasFailing: boolean;
  /** 410 Gone: pause the subscription. */
  pause: boolean;
  /** The run's own id: a repeat of its report writes nothing twice. */
  writeId: string;
}

/** The run's report as one call of a batch; its reply read with healthOf. Safe to repeat. */
export function reportCall(db: Db, sub: Subscription, r: ReportInput): Call {
  const field = (fact: StateFact) => stateField(sub.name, fact);
  const { set, increment } = stateWrites(r.state, field);
  const counts = counterIncrements(r.state.counts, (c) => metricsField(sub.name, c));
  const keys = [
    db.keys.subscriptions(sub.channel),
    db.keys.state(sub.channel),
    db.keys.metrics(sub.channel),
    db.keys.written(r.writeId),
  ];
  const args = [
    sub.name,
    sub.id,
    field("failures"),
    String(increment),
    field("failingSince"),
    field("disabledAt"),
    String(r.now),
    String(r.disableAfterMs),
    pausedField(sub.name),
    r.wasFailing && r.state.success ? "1" : "0",
    r.pause ? "1" : "0",
    String(counts.length / 2),
    ...counts,
    ...Object.entries(set).flat(),
  ];
  return { script: REPORT_LUA, keys, args };
}

const HEALTH: Health[] = [null, null, "failing", "disabled", "recovered"];

export const healthOf = (value: unknown): Health => HEALTH[asNumber(value)] ?? null;
