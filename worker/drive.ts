// Push: a policy on the delivery engine (shared/engine/). One deliverer run drives one unit of a
// subscription (its group on the channel, or on its redrive stream) in one invocation, as a
// reader of its own, with up to `target` requests in flight:
//
//   take     a round trip (rounds.ts): what the run owes Redis (acks, nacks at their retry
//            time, dead letters, attempt records), then up to its free requests' worth of entries
//            (twice that while the cap leaves plenty of room), leased for their visibility
//            timeout; the first take covers them in the schedule
//   send     each batch POSTed once a request slot is free (deliver.ts), paced when the
//            subscription has maxRequestsPerSecond, never once its lease might not outlive it
//   judge    what the answer means (judge.ts: one Outcome)
//   settle   folded into what the run owes and its progress (settle.ts: pure)
//   final    when nothing is in flight: what is owed, the run's report, and a last take that
//            either finds more (the run goes on) or sets the unit's schedule and lets go
//
// It takes again while requests are in flight only while its takes come back full: a backlog.
// Otherwise what is published meanwhile waits for its requests to end (or for the deliverer a
// publish wakes). An invocation keeps at most CONNECTIONS open (shared/meter.ts): beyond that,
// concurrency comes from more invocations (visit.ts asks the queue for them, a publish joins).
//
// A failed request stops the run (a backoff, or 410's pause): nothing more is taken or sent, and
// batches taken and not sent go back visible when the backoff ends, with their attempt as it was.
// The clock is read once per step, and the time passed into the pure parts.

import type { Config } from "../shared/config.ts";
import {
  channelQueue,
  newReader,
  type Queue,
  redriveQueue,
  WAITING_ROOM,
} from "../shared/engine/queue.ts";
import { PENDING_LIMIT, type Taken, type TakeRequest } from "../shared/engine/take.ts";
import { retryMember, type Unit, unitName, wakeMember } from "../shared/keys.ts";
import { POST_SLOTS } from "../shared/meter.ts";
import { type Db, isReplyError } from "../shared/redis.ts";
import { compareIds } from "../shared/streams.ts";
import { type Subscription, signingSecrets } from "../shared/subscription.ts";
import { attemptOf } from "./attempts.ts";
import { cutBatches } from "./batches.ts";
import { type Answer, deliver, type Endpoint } from "./deliver.ts";
import { type End, nextVisit, wakeAfter } from "./ending.ts";
import { failureLine, judge, stops } from "./judge.ts";
import type { Health } from "./report.ts";
import { finalRound, type Reader, type Round, takeRound } from "./rounds.ts";
import {
  filtered,
  giveBack,
  nothingOwed,
  type Owed,
  owedBoth,
  type Run,
  refusedDeadLetters,
  settle,
  startRun,
  type Tally,
} from "./settle.ts";

export type { End };

export interface DriveContext {
  db: Db;
  config: Config;
  clock: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Bytes this run's takes may hold at once (batches.ts: readBytesFor). */
  readBytes: number;
  /** Asks for another invocation to deliver the subscription too (visit.ts: with a queue). */
  join: () => Promise<void>;
}

/** A unit to deliver, and what of it is due. */
export interface Job {
  sub: Subscription;
  unit: Unit;
  /** Its retry member is due: look for entries whose visibility ran out first. */
  look: boolean;
  /** Its wake member is due: read new entries. */
  read: boolean;
  /** It was failing when the visit began (a retry was due): a success is its recovery. */
  wasFailing: boolean;
}

export interface Driven {
  tally: Tally;
  end: End;
  health: Health[];
  /** When the unit wants its next visit: a backoff's end, a retry, or at once (a hand-over). */
  nextAt: number | null;
  /** A bug or an outage stopped it (logged). */
  error?: string;
}

// Room kept after a request a batch's lease must outlive: the round trip that settles it, and the
// clock difference between the Worker and Redis.
const VISIBILITY_MARGIN_MS = 5_000;
/**
 * How long what a run takes stays invisible to other readers: a batch may wait for a request of
 * the same take to end before its own starts, then takes its own timeout. A run that dies leaves
 * its messages to be redelivered that long after it took them.
 */
export const visibilityFor = (timeoutMs: number) => 2 * timeoutMs + VISIBILITY_MARGIN_MS;
/** Subrequests a run keeps back for its end: the final round, dead letters, one repeat. */
export const END_RESERVE = 3;

interface Batch {
  entries: Taken[];
  takenAt: number;
  /** Not started before this (its pace slot). */
  startAt: number;
}

type Event =
  | { kind: "taken"; round: Round; count: number; looked: boolean; final: boolean; at: number }
  | { kind: "sent"; batch: Batch; answer: Answer; at: number; durationMs: number }
  | { kind: "unsent"; batch: Batch }
  | { kind: "failed"; error: unknown; during: "take" | "send"; final?: boolean };

export function queueOf(db: Db, unit: Unit, sub: Subscription): Queue {
  const schedule = { retry: retryMember(unit), wake: wakeMember(unit) };
  return unit.kind === "main" ? channelQueue(db, sub, schedule) : redriveQueue(db, sub, schedule);
}

/** Delivers what is due on the unit (see the header); never throws. */
export async function drive(ctx: DriveContext, job: Job): Promise<Driven> {
  const { db, config, clock } = ctx;
  const { sub, unit } = job;
  const meter = db.meter;
  const reader: Reader = {
    db,
    sub,
    unit,
    q: queueOf(db, unit, sub),
    name: newReader(),
    bounds: { maxAgeMs: config.deadLetterMaxAgeMs, maxMessages: config.deadLetterMaxMessages },
  };
  const visibilityMs = visibilityFor(sub.timeoutMs);
  const target = Math.max(1, Math.min(sub.maxConcurrency, POST_SLOTS));
  const paceMs = sub.maxRequestsPerSecond === null ? 0 : 1000 / sub.maxRequestsPerSecond;
  // A paced subscription takes no more than it may start within one timeout.
  const batchesAtMost = paceMs > 0 ? Math.max(1, Math.floor(sub.timeoutMs / paceMs)) : Infinity;
  const endpoint: Endpoint = {
    channel: sub.channel,
    subscription: sub.name,
    group: sub.group,
    url: sub.url,
    timeoutMs: sub.timeoutMs,
    secrets: signingSecrets(sub, clock()),
  };
  const mail = new Mailbox<Event>();
  const buffer: Batch[] = [];
  const health: Health[] = [];
  let run: Run = startRun();
  let look = job.look;
  let reading = job.read;
  /** The last take came back full: more waits, so it takes again while requests are in flight. */
  let backlog = true;
  /**
   * Batches taken beyond those that go out at once, so that a request that ends finds the next
   * waiting: only while the cap leaves room for as many again (what this run holds counts
   * against the cap, and other invocations may want a share of it).
   */
  let prefetch = 0;
  let first = true;
  let taking = false;
  let sending = 0;
  let cursor = "0-0";
  let largest = 0;
  let end: End | null = null;
  let nextAt: number | null = null;
  let error: string | undefined;
  let done = false;
  let finalFailures = 0;
  meter.hold(END_RESERVE);

  const request = (owed: Owed, now: number, count: number, looking: boolean): TakeRequest => ({
    reader: reader.name,
    holder: WAITING_ROOM,
    now,
    count,
    visibilityMs,
    byteBudget: ctx.readBytes,
    sizeHint: largest || config.maxMessageBytes,
    look: looking,
    maxAttempts: sub.maxAttempts,
    types: sub.types,
    ack: owed.ack,
    nack: owed.nack.map((n) => ({ ...n, visibleInMs: Math.max(0, n.at - now) })),
    cover: first,
    cap: { requests: sub.maxConcurrency, batchSize: sub.batchSize, own: sending + buffer.length },
    pendingLimit: PENDING_LIMIT,
    paceIntervalMs: paceMs,
  });

  // One round trip, its result posted as an event; `final` with the report, ending the run if
  // its take finds nothing more.
  const flush = async (count: number, final: boolean) => {
    const owed = run.owed;
    const now = clock();
    const req = { ...request(owed, now, count, look), end: final };
    run = { ...run, owed: nothingOwed() };
    first = false;
    try {
      let round: Round;
      if (!final) round = await takeRound(reader, owed, req, cursor);
      else {
        const kind = kindOf();
        const wake = count > 0 ? null : wakeAfter(kind, run.progress.stop, now, config.retryBaseMs);
        const report = {
          state: run.progress.state,
          now,
          disableAfterMs: config.disableAfterMs,
          wasFailing: job.wasFailing,
          pause: kind === "gone",
          writeId: `${reader.name}.${health.length}`,
        };
        const ended = await finalRound(reader, owed, req, report, wake);
        health.push(ended.health);
        // Written: what follows is the next report's.
        run = { ...run, progress: { ...run.progress, state: startRun().progress.state } };
        round = ended;
      }
      mail.post({ kind: "taken", round, count, looked: look, final, at: now });
    } catch (e) {
      // Refused, nothing of it ran: what it carried is still owed, for the run's end.
      run = { ...run, owed: owedBoth(owed, run.owed) };
      mail.post({ kind: "failed", error: e, during: "take", final });
    }
  };

  const send = async (batch: Batch) => {
    // A pace slot past the deadline is not waited for.
    if (batch.startAt >= meter.deadline) {
      meter.unhold(1);
      mail.post({ kind: "unsent", batch });
      return;
    }
    const wait = batch.startAt - clock();
    if (wait > 0) await ctx.sleep(wait);
    await meter.posts.take();
    try {
      const now = clock();
      meter.unhold(1);
      // Not once stopped, past the deadline, or when the lease might not outlive the request.
      const late = now + sub.timeoutMs + VISIBILITY_MARGIN_MS > batch.takenAt + visibilityMs;
      if (run.progress.stop || late || !meter.allows(now, 1)) {
        mail.post({ kind: "unsent", batch });
        return;
      }
      const answer = await deliver(meter, endpoint, batch.entries, now);
      mail.post({ kind: "sent", batch, answer, at: now, durationMs: Math.max(0, clock() - now) });
    } catch (e) {
      mail.post({ kind: "failed", error: e, during: "send" });
    } finally {
      meter.posts.give();
    }
  };

  while (!done) {
    const now = clock();
    const stop = run.progress.stop;
    if (stop) {
      // Nothing more goes out: what was taken and not sent comes back when the backoff ends.
      const unsent = buffer.splice(0);
      meter.unhold(unsent.length);
      run = giveBack(
        run,
        unsent.flatMap((b) => b.entries),
        stop.kind === "backoff" ? stop.at : now,
      );
    }
    while (buffer.length > 0 && sending < target) {
      sending++;
      void send(buffer.shift()!);
    }
    if (!taking && buffer.length === 0) {
      const wants = !stop && end === null && (reading || look);
      // The take's round trip, and a POST per batch it may bring (its end is kept back).
      const fit = Math.min(target + prefetch - sending, batchesAtMost, meter.left - 1);
      if (wants && (fit < 1 || !meter.allows(now, 2))) end = "budget";
      if (end === "lost") {
        // The group is gone: nothing more can be written.
        if (sending === 0) break;
      } else if (wants && end === null && (first || (backlog && sending <= target / 2))) {
        taking = true;
        void flush(sub.batchSize * fit, false);
      } else if (sending === 0) {
        // Nothing in flight: the last round, which may still find more if the run may read.
        taking = true;
        void flush(wants && end === null ? sub.batchSize * fit : 0, true);
      }
    }
    const event = await mail.next();
    const at = clock();
    switch (event.kind) {
      case "taken": {
        taking = false;
        const { taken, refused, refusal } = event.round;
        run = refusedDeadLetters(run, refused, at + config.retryBaseMs, refusal, at);
        run = filtered(run, taken.filtered);
        largest = Math.max(largest, taken.largest);
        for (const t of taken.taken) if (compareIds(t.entryId, cursor) > 0) cursor = t.entryId;
        if (taken.dead.length > 0) {
          const reason =
            "its deliverer stopped before the answer was recorded, on the last attempt";
          const letters = taken.dead.map((d) => ({
            id: d.entryId,
            attempts: d.deliveries,
            error: reason,
          }));
          run = { ...run, owed: { ...run.owed, dead: [...run.owed.dead, ...letters] } };
        }
        // Looking again only while looks come back full: more may have run out.
        look = event.looked && taken.taken.length >= event.count;
        backlog = taken.read === "more";
        if (taken.read === "empty") reading = false;
        // More waits than this run can send at once, and the cap has room for more: another
        // invocation may join (each keeps at most six connections).
        if (backlog && taken.room !== null && taken.room > target) void ctx.join();
        prefetch = taken.room === null || taken.room >= 2 * target ? target : 0;
        const batches = cutBatches(taken.taken, {
          batchSize: sub.batchSize,
          maxBatchBytes: config.maxBatchBytes,
        });
        // No room: if this run's own requests hold it, it takes again once they end; if other
        // deliverers (or the pending limit) hold it, the run ends and leaves the unit to them.
        if (taken.read === "no-room" && sending + buffer.length + batches.length === 0) {
          end ??= taken.room === 0 ? "busy" : "full";
        }
        meter.hold(batches.length);
        // Leased when the take ran: no earlier than it was sent.
        batches.forEach((entries, i) => {
          const startAt = taken.paceAt === null ? at : taken.paceAt + i * paceMs;
          buffer.push({ entries, takenAt: event.at, startAt });
        });
        // A final round that found nothing more, and left nothing owed, ended the run.
        const owes = run.owed.ack.length + run.owed.nack.length + run.owed.dead.length > 0;
        if (event.final && batches.length === 0 && !owes) {
          done = true;
          nextAt = nextVisit(kindOf(), run.progress.stop, at, taken.nextAt, config.retryBaseMs);
        }
        break;
      }
      case "sent": {
        sending--;
        const { batch, answer } = event;
        const outcome = judge(answer, batch.entries, {
          now: event.at,
          maxAttempts: sub.maxAttempts,
          jitterKey: sub.name,
          policy: config,
        });
        const attempt = attemptOf(batch.entries, answer, event.at, event.durationMs);
        run = settle(run, { batch: batch.entries, outcome, attempt, at: event.at }, unit.kind);
        const line = failureLine(endpoint, outcome, batch.entries, event.at);
        if (line) console.warn(line);
        if (stops(outcome)) reading = false;
        break;
      }
      case "unsent": {
        sending--;
        const stop = run.progress.stop;
        run = giveBack(run, event.batch.entries, stop?.kind === "backoff" ? stop.at : at);
        break;
      }
      case "failed":
        if (event.during === "take") taking = false;
        else sending--;
        if (isReplyError(event.error, "NOGROUP")) end = "lost";
        else {
          error ??= event.error instanceof Error ? event.error.message : String(event.error);
          console.error(`delivery to ${unitName(unit)} failed:`, event.error);
          if (end !== "lost") end = "error";
        }
        // A final round that failed is tried once more (what it carried is still owed); then
        // nothing more can be written.
        if (event.during === "take" && event.final && (end === "lost" || ++finalFailures > 1)) {
          done = true;
          nextAt = nextVisit(kindOf(), run.progress.stop, at, null, config.retryBaseMs);
        }
        break;
    }
  }
  meter.unhold(END_RESERVE);
  const tally = run.progress.tally;
  return { tally, end: kindOf(), health, nextAt, ...(error ? { error } : {}) };

  function kindOf(): End {
    return run.progress.stop?.kind ?? end ?? "idle";
  }
}

/** A queue of events, awaited one at a time. */
class Mailbox<T> {
  private readonly events: T[] = [];
  private wake: (() => void) | null = null;
  post(event: T): void {
    this.events.push(event);
    this.wake?.();
  }
  async next(): Promise<T> {
    while (this.events.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
    return this.events.shift()!;
  }
}
