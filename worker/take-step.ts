// A deliverer's take (drive.ts decides when): one round trip (rounds.ts) that carries what the
// run owes Redis and asks for up to `count` more entries; the final one also carries the run's
// report (or owes it to the isolate's ledger: ownReport) and, if it finds nothing, ends the run.
// What happened is posted to the run's mailbox.

import { WAITING_ROOM } from "../shared/engine/queue.ts";
import {
  type FlowTake,
  PENDING_LIMIT,
  type Signals,
  type TakeRequest,
  type Window,
} from "../shared/engine/take.ts";
import { JOIN_AFTER_MS } from "../shared/streams.ts";
import { type Flow, START_CONCURRENCY } from "../shared/subscription.ts";
import type { Deliverer } from "./deliverer.ts";
import { endOf } from "./deliverer.ts";
import { wakeAfter } from "./ending.ts";
import { ledger } from "./ledger.ts";
import type { ReportInput } from "./report.ts";
import { finalRound, type Round, takeRound } from "./rounds.ts";
import { nothingOwed, type Owed, owedBoth, startRun } from "./settle.ts";
import { tell } from "./window.ts";

function request(
  d: Deliverer,
  owed: Owed,
  now: number,
  count: number,
  window: Signals & { known: Window | null },
): TakeRequest {
  const { sub } = d.job;
  return {
    reader: d.reader.name,
    holder: WAITING_ROOM,
    now,
    count,
    visibilityMs: d.visibilityMs,
    byteBudget: d.ctx.readBytes,
    sizeHint: d.largest || d.ctx.config.maxMessageBytes,
    look: d.look,
    maxAttempts: sub.maxAttempts,
    types: sub.types,
    ack: owed.ack,
    nack: owed.nack.map((n) => ({ ...n, visibleInMs: Math.max(0, n.at - now) })),
    // Every take that hands entries out covers them: another deliverer's end, finding nothing
    // pending then, may have removed the retry member since this run's last take.
    cover: true,
    // One at work takes what a publish adds next: the publish neither kicks nor joins for as
    // long as a publish waits before joining a backlog (shared/streams.ts).
    busyWakeMs: JOIN_AFTER_MS,
    cap: {
      requests: sub.maxConcurrency,
      batchSize: sub.batchSize,
      own: d.sending + d.buffer.length,
    },
    // Adaptive: what the requests that ended met moves the subscription's window (window.ts).
    window: { ...window, start: START_CONCURRENCY },
    pendingLimit: PENDING_LIMIT,
    paceIntervalMs: d.paceMs,
    // Ordered: the channel's entries only (a redrive stream's go out as they come).
    ...(sub.ordered && d.job.unit.kind === "main"
      ? {
          lanes: {
            key: d.ctx.db.keys.lanes(sub.channel, sub.name),
            dead: owed.dead.map((letter) => letter.id),
          },
        }
      : {}),
    ...(sub.flow ? { flow: flowTake(d, sub.flow) } : {}),
  };
}

// A flow key's share, asked for on every take of a run under one (one that takes nothing still
// lets go of what it held): a lease of the run's visibility timeout, which outlives every request
// it starts, and start slots no further out than half a timeout, so a batch waiting for its slot
// still starts well within its lease (send-step.ts).
const flowTake = (d: Deliverer, flow: Flow): FlowTake => ({
  key: flow.key,
  parallelism: flow.parallelism ?? 0,
  intervalMs: d.flowMs,
  horizonMs: d.job.sub.timeoutMs / 2,
  leaseMs: d.visibilityMs,
});

/** Takes up to `count` entries; `final` with the report, ending the run if it finds none. */
export async function takeStep(d: Deliverer, count: number, final: boolean): Promise<void> {
  const { config, clock } = d.ctx;
  const owed = d.run.owed;
  const now = clock();
  const looked = d.look;
  // Telling before a join: the take writes what the run kept, as its last round does.
  const told = tell(d.window, owed.signals, d.job.sub.maxConcurrency, final || d.telling, d.alone);
  const carried = { ...owed, signals: told.carried };
  const window = { ...told.carried, known: told.known };
  const req = { ...request(d, carried, now, count, window), end: final };
  // Carried by this round: what is owed from here on is the next round's (with the successes
  // the window is not told yet).
  d.run = { ...d.run, owed: { ...nothingOwed(), signals: told.kept } };
  for (const n of owed.nack) d.retryAt = Math.min(d.retryAt ?? n.at, n.at);
  d.first = false;
  try {
    let round: Round;
    if (!final) round = await takeRound(d.reader, owed, req, d.cursor);
    else {
      const kind = endOf(d);
      const wake = count > 0 ? null : wakeAfter(kind, d.run.progress.stop, now, config.retryBaseMs);
      const report = {
        state: d.run.progress.state,
        now,
        disableAfterMs: config.disableAfterMs,
        wasFailing: d.job.wasFailing,
        pause: kind === "gone",
        writeId: `${d.reader.name}.${d.health.length}`,
      };
      const immediate = ownReport(report);
      if (!immediate) {
        // Owed to the ledger: the run's report is made, whatever becomes of this round.
        const { success, counts } = report.state;
        ledger.owe(d.job.sub, now, { counts, success });
        d.run = { ...d.run, progress: { ...d.run.progress, state: startRun().progress.state } };
      }
      const ended = await finalRound(
        d.reader,
        owed,
        req,
        d.cursor,
        immediate ? report : null,
        wake,
      );
      d.health.push(ended.health);
      // Written: what follows is the next report's.
      d.run = { ...d.run, progress: { ...d.run.progress, state: startRun().progress.state } };
      round = ended;
    }
    const own = req.cap?.own ?? 0;
    d.mail.post({ kind: "taken", round, count, looked, final, at: now, own, stored: told.stored });
  } catch (e) {
    // Refused, nothing of it ran: what it carried is still owed, for the run's end (but its
    // records: rounds.ts gave them to the ledger).
    d.run = { ...d.run, owed: owedBoth({ ...carried, records: [] }, d.run.owed) };
    d.mail.post({ kind: "failed", error: e, during: "take", final });
  }
}

/**
 * Whether a run's report is written at once (lua/report.ts), not owed to the isolate's ledger
 * (ledger.ts): it tells of a failure or an error (failures in a row, failingSince, the disable),
 * a recovery (failingSince cleared: an event), or a 410's pause. Successes, and runs that sent
 * nothing, are only counters and lastSuccessAt: the ledger writes them within a second.
 */
export function ownReport(r: ReportInput): boolean {
  const { state } = r;
  return (
    r.pause ||
    state.error !== null ||
    state.failuresSince > 0 ||
    (r.wasFailing && state.success !== null)
  );
}
