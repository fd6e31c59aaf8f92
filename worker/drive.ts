// Push: a policy on the delivery engine (shared/engine/). One deliverer run drives one unit of a
// subscription (its group on the channel, or on its redrive stream) in one invocation, as a
// reader of its own, with up to `target` requests in flight (the subscription's window, shared by
// every deliverer of it: lua/take.ts step 5, within the invocation's POST slots):
//
//   take     a round trip (take-step.ts, rounds.ts): what the run owes Redis (acks, nacks at
//            their retry time, dead letters, attempt records, what its requests met: successes
//            grow the window, congestion halves it), then up to its free requests'
//            worth of entries (twice that while the cap leaves plenty of room: a run alone
//            under the window holds ahead of it, up to maxConcurrency, and sends within it),
//            counted by the window that take leaves, leased for their visibility timeout, and
//            covered in the schedule (the retry member)
//   send     each batch POSTed once a request slot is free (send-step.ts, deliver.ts), paced
//            when the subscription has maxRequestsPerSecond (and its flow key a rate), never once
//            its lease might not outlive it
//   judge    what the answer means (judge.ts: one Outcome)
//   settle   folded into what the run owes and its progress (on-event.ts, settle.ts: pure)
//   final    when nothing is in flight: what is owed, the run's report, and a last take that
//            either finds more (the run goes on) or sets the unit's schedule and lets go
//
// Under a flow key, a take the key leaves no room for takes nothing: with nothing in flight, the
// run takes again when a slot may be free (FLOW_POLL_MS at most), within the deadline and budget.
//
// It takes again while requests are in flight only while its takes come back full: a backlog.
// Otherwise what is published meanwhile waits for its requests to end (or for the deliverer a
// publish wakes). An invocation keeps at most CONNECTIONS open (shared/meter.ts): beyond that,
// concurrency comes from more invocations (visit.ts asks the queue for them, a publish joins).
//
// A failed request stops the run (a backoff, or 410's pause): nothing more is taken or sent, and
// batches taken and not sent go back visible when the backoff ends, with their attempt as it was.
// Not a 429 or 503 without Retry-After while the window can still shrink (judge.ts): the smaller
// window answers that congestion, and the run goes on.
// The clock is read once per step, and the time passed into the pure parts.

import {
  type Deliverer,
  type DriveContext,
  endOf,
  type Job,
  startDeliverer,
  targetFor,
} from "./deliverer.ts";
import type { End } from "./ending.ts";
import { onEvent } from "./on-event.ts";
import type { Health } from "./report.ts";
import { sendStep } from "./send-step.ts";
import { giveBack, type Tally } from "./settle.ts";
import { takeStep } from "./take-step.ts";
import { grown } from "./window.ts";

export type { DriveContext, End, Job };

export interface Driven {
  tally: Tally;
  end: End;
  health: Health[];
  /** When the unit wants its next visit: a backoff's end, a retry, or at once (a hand-over). */
  nextAt: number | null;
  /** A bug or an outage stopped it (logged). */
  error?: string;
}

/** Subrequests a run keeps back for its end: the final round, dead letters, one repeat. */
export const END_RESERVE = 3;

/** Delivers what is due on the unit (see the header); never throws. */
export async function drive(ctx: DriveContext, job: Job): Promise<Driven> {
  const d = startDeliverer(ctx, job);
  d.meter.hold(END_RESERVE);
  try {
    while (!d.done) {
      if (!start(d, ctx.clock())) break;
      const event = await d.mail.next();
      onEvent(d, event, ctx.clock());
    }
  } finally {
    d.meter.unhold(END_RESERVE);
  }
  const tally = d.run.progress.tally;
  return { tally, end: endOf(d), health: d.health, nextAt: d.nextAt, ...errorOf(d) };
}

const errorOf = (d: Deliverer) => (d.error ? { error: d.error } : {});

/**
 * Requests the run will keep in flight after its next take: the window that take leaves, grown
 * by the successes it carries (window.ts); its target as it is while congestion is owed (the
 * take cuts it).
 */
function nextTarget(d: Deliverer): number {
  const { signals } = d.run.owed;
  if (d.window === null || signals.congestedAt > 0) return d.target;
  return targetFor(grown(d.window, signals.succeeded, d.job.sub.maxConcurrency).size, d.job.sub);
}

/**
 * Starts what the run can start now: the batches taken, up to `target` in flight, then a take
 * while a backlog waits, or the final round once nothing is in flight. False when the run is
 * over: its group is gone and nothing is in flight.
 */
function start(d: Deliverer, now: number): boolean {
  const { meter } = d;
  const stop = d.run.progress.stop;
  if (stop) {
    // Nothing more goes out: what was taken and not sent comes back when the backoff ends.
    const unsent = d.buffer.splice(0);
    meter.unhold(unsent.length);
    const at = stop.kind === "backoff" ? stop.at : now;
    d.run = giveBack(
      d.run,
      unsent.flatMap((b) => b.entries),
      at,
    );
  }
  while (d.buffer.length > 0 && d.sending < d.target) {
    d.sending++;
    void sendStep(d, d.buffer.shift()!);
  }
  if (d.taking || d.buffer.length > 0) return true;
  // Ordered: acks hand out their keys' next messages (lua/take.ts: lanes), so a take that carries
  // them finds more, where a final round would add a report for each.
  const releases = d.job.sub.ordered && d.run.owed.ack.length > 0 && d.sending <= d.target / 2;
  const wants = !stop && d.end === null && (d.reading || d.look || releases);
  // The take's round trip, and a POST per batch it may bring (its end is kept back).
  const affordable = meter.left - 1;
  if (wants && (affordable < 1 || !meter.allows(now, 2))) d.end = "budget";
  const next = nextTarget(d);
  const fit = Math.min(next + (d.prefetch > 0 ? next : 0) - d.sending, d.batchesAtMost, affordable);
  const count = d.job.sub.batchSize * Math.max(0, fit);
  if (d.end === "lost") {
    // The group is gone: nothing more can be written.
    return d.sending > 0;
  }
  // The flow key left no room, and nothing is in flight: take again when a slot may be free,
  // within the deadline and the budget; else the unit goes to the next visit (budget: still due).
  if (d.flowWaitUntil !== null && d.sending === 0) {
    const at = Math.max(now, d.flowWaitUntil);
    d.flowWaitUntil = null;
    if (wants && d.end === null && fit >= 1) {
      if (meter.allows(at, 2)) {
        d.taking = true;
        void d.ctx.sleep(at - now).then(() => takeStep(d, count, false));
        return true;
      }
      d.end = "budget";
    }
  }
  // While requests are in flight: a backlog once half of them have ended; and a stream (takes
  // that find batches to spare) into the free slots, so what is published meanwhile does not
  // wait for the requests to end. A trickle waits for them: its final round takes it, a take
  // cheaper than one that finds nothing.
  const more =
    d.first ||
    releases ||
    (d.backlog && d.sending <= d.target / 2) ||
    (d.flowing && d.sending > 0 && d.sending < d.target);
  if (wants && d.end === null && fit >= 1 && more) {
    d.taking = true;
    void takeStep(d, count, false);
  } else if (d.sending === 0) {
    // Nothing in flight: the last round. It reads unless the run stopped (a retry that went
    // through says the endpoint takes requests again), so it finds what was published meanwhile
    // and lets go of the wake member this run's takes held (lua/take.ts: busy wake).
    d.taking = true;
    void takeStep(d, !stop && d.end === null ? count : 0, true);
  }
  return true;
}
