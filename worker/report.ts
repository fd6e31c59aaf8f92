// A run's own report, beside its group's writes (the engine's take writes those): written at
// once when it has more to tell than a success (take-step.ts ownReport; the isolate's ledger,
// ledger.ts, writes the others and every run's attempt records). Its cost, and what happens when
// its reply is lost (shared/redis.ts):
//
//   call          commands                                 reply lost
//   report        lua/report.ts: counters, delivery state,  again: a repeat finds what the first
//                 health, pause on 410                     run answered ({p}:written:<id>) and
//                                                           writes nothing

import { ATTEMPT_LOG_LENGTH, type AttemptRecord, logEntryArgs } from "../shared/attempt-log.ts";
import { metricsField, pausedField, type StateFact, stateField } from "../shared/keys.ts";
import { REPORT_LUA } from "../shared/lua/report.ts";
import { asNumber, type Call, type Db } from "../shared/redis.ts";
import type { Subscription } from "../shared/subscription.ts";
import { counterIncrements } from "./attempts.ts";
import type { StateChange } from "./settle.ts";
import { stateWrites } from "./settle.ts";

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

/**
 * The run's report as one call of a batch, with the attempt records its subscription owes, in
 * the order they were made; its reply read with healthOf. Safe to repeat.
 */
export function reportCall(
  db: Db,
  sub: Subscription,
  r: ReportInput,
  records: AttemptRecord[],
): Call {
  const field = (fact: StateFact) => stateField(sub.name, fact);
  const { set, increment } = stateWrites(r.state, field);
  const counts = counterIncrements(r.state.counts, (c) => metricsField(sub.name, c));
  const keys = [
    db.keys.subscriptions(sub.channel),
    db.keys.state(sub.channel),
    db.keys.metrics(sub.channel),
    db.keys.written(r.writeId),
    db.keys.attempts(sub.channel, sub.name),
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
    String(ATTEMPT_LOG_LENGTH),
    ...logEntryArgs(records),
    String(counts.length / 2),
    ...counts,
    ...Object.entries(set).flat(),
  ];
  return { script: REPORT_LUA, keys, args };
}

const HEALTH: Health[] = [null, null, "failing", "disabled", "recovered"];

export const healthOf = (value: unknown): Health => HEALTH[asNumber(value)] ?? null;
