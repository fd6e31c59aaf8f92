// Push: a policy on the delivery engine (shared/engine/). One deliverer run drives one unit of a
// subscription (its group on the channel, or on its redrive stream) in one invocation, as a
// reader of its own (newReader), with up to `target` requests in flight:
//
//   take     one round trip (flush): what the run owes Redis (acks, nacks at their retry time,
//            dead letters, attempt records) and up to twice its free requests' worth of entries,
//            leased for their visibility timeout; the first take covers them in the schedule
//   send     each batch POSTed as soon as a request slot is free (deliver.ts), paced when the
//            subscription has maxRequestsPerSecond, never once its lease might not outlive it
//   judge    what the answer means (judge.ts: one Outcome)
//   settle   folded into what the run owes and its progress (settle.ts: pure)
//   end      one last round trip: what is owed, the schedule set exactly from the group's pending
//            list, the reader's consumer deleted, the run's report (report.ts)
//
// More is taken while requests are in flight, as long as the subscription has backlog and the
// cap (maxConcurrency, counted over every reader of the group, lua/take.ts) has room. An
// invocation keeps at most CONNECTIONS open (shared/meter.ts): beyond that, concurrency comes
// from more invocations (visit.ts asks the queue for them).
//
// A failed request stops the run (a backoff, or 410's pause): nothing more is taken or sent,
// batches taken and not sent go back visible when the backoff ends, with their attempt as it was.
// The clock is read once per step, and the time passed into the pure parts.

import type { Config } from "../shared/config.ts";
import { type Letter, park, parkCall, readPark } from "../shared/engine/dead-letters.ts";
import {
  channelQueue,
  newReader,
  type Queue,
  redriveQueue,
  WAITING_ROOM,
} from "../shared/engine/queue.ts";
import {
  PENDING_LIMIT,
  readTake,
  type Taken,
  type TakeRequest,
  type TakeResult,
  take,
  takeCall,
} from "../shared/engine/take.ts";
import { retryMember, type Unit, unitName, wakeMember } from "../shared/keys.ts";
import { POST_SLOTS } from "../shared/meter.ts";
import {
  type Db,
  isOutcomeUnknown,
  isReplyError,
  type Pipeline,
  replyValue,
  sendBatch,
} from "../shared/redis.ts";
import { compareIds } from "../shared/streams.ts";
import { type Subscription, signingSecrets } from "../shared/subscription.ts";
import { attemptOf } from "./attempts.ts";
import { cutBatches, takeCount } from "./batches.ts";
import { deliver, type Endpoint } from "./deliver.ts";
import { failureLine, judge, stops } from "./judge.ts";
import { type Health, healthOf, recordAgain, recordCalls, reportCall } from "./report.ts";
import {
  filtered,
  giveBack,
  nothingOwed,
  type Owed,
  type Run,
  refusedDeadLetters,
  settle,
  startRun,
  type Tally,
} from "./settle.ts";

export interface DriveContext {
  db: Db;
  config: Config;
  clock: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Bytes this run's takes may hold at once (batches.ts: readBytesFor). */
  readBytes: number;
  /** How far ahead a run the budget stops puts its wake member (visit.ts: a hand-over's grace). */
  graceMs: number;
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

/**
 * How a run ended: idle (nothing more to read), busy (other deliverers hold the cap), full (the
 * group's pending limit), budget (the invocation's), backoff (its endpoint failed), gone (410:
 * paused), lost (the group is gone: the caller finds out why).
 */
export type End = "idle" | "busy" | "full" | "budget" | "backoff" | "gone" | "lost";

export interface Driven {
  tally: Tally;
  end: End;
  health: Health;
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
/** Subrequests a run keeps back for its end: the end's round trip, dead letters, one repeat. */
export const END_RESERVE = 3;

interface Batch {
  entries: Taken[];
  takenAt: number;
  /** Not started before this (its pace slot). */
  startAt: number;
}

type Event =
  | { kind: "taken"; result: TakeResult; count: number; looked: boolean; sentAt: number }
  | {
      kind: "sent";
      batch: Batch;
      answer: Awaited<ReturnType<typeof deliver>>;
      at: number;
      durationMs: number;
    }
  | { kind: "unsent"; batch: Batch }
  | { kind: "failed"; error: unknown; during: "take" | "send" };

/** A queue of events, awaited one at a time. */
class Mailbox {
  private readonly events: Event[] = [];
  private wake: (() => void) | null = null;
  post(event: Event): void {
    this.events.push(event);
    this.wake?.();
  }
  async next(): Promise<Event> {
    while (this.events.length === 0) await new Promise<void>((resolve) => (this.wake = resolve));
    this.wake = null;
    return this.events.shift()!;
  }
}

export function queueOf(db: Db, unit: Unit, sub: Subscription): Queue {
  const schedule = { retry: retryMember(unit), wake: wakeMember(unit) };
  return unit.kind === "main" ? channelQueue(db, sub, schedule) : redriveQueue(db, sub, schedule);
}

/** Delivers what is due on the unit (see the header); never throws. */
export async function drive(ctx: DriveContext, job: Job): Promise<Driven> {
  const { db, config, clock } = ctx;
  const { sub, unit } = job;
  const meter = db.meter;
  const q = queueOf(db, unit, sub);
  const reader = newReader();
  const visibilityMs = visibilityFor(sub.timeoutMs);
  const target = Math.max(1, Math.min(sub.maxConcurrency, POST_SLOTS));
  const paceMs = sub.maxRequestsPerSecond === null ? 0 : 1000 / sub.maxRequestsPerSecond;
  const maxPaced = Math.max(1, Math.floor(sub.timeoutMs / Math.max(1, paceMs)));
  const endpoint: Endpoint = {
    channel: sub.channel,
    subscription: sub.name,
    group: sub.group,
    url: sub.url,
    timeoutMs: sub.timeoutMs,
    secrets: signingSecrets(sub, clock()),
  };
  const bounds = { maxAgeMs: config.deadLetterMaxAgeMs, maxMessages: config.deadLetterMaxMessages };
  const mail = new Mailbox();
  const buffer: Batch[] = [];
  let run: Run = startRun();
  let look = job.look;
  let reading = job.read;
  let first = true;
  let taking = false;
  let sending = 0;
  let cursor = "0-0";
  let largest = 0;
  let end: End | null = null;
  let error: string | undefined;
  meter.hold(END_RESERVE);

  // One round trip: what is owed, and up to `count` entries taken.
  const flush = async (count: number, looking: boolean) => {
    const owed = run.owed;
    run = { ...run, owed: nothingOwed() };
    const now = clock();
    const req: TakeRequest = {
      ...takeRequest(owed, now),
      count,
      look: looking,
      cover: first,
      cap: { requests: sub.maxConcurrency, batchSize: sub.batchSize, own: sending + buffer.length },
      pendingLimit: PENDING_LIMIT,
      paceIntervalMs: paceMs,
    };
    first = false;
    try {
      const result = await takeOnce(owed, req, now);
      mail.post({ kind: "taken", result, count, looked: looking, sentAt: now });
    } catch (e) {
      mail.post({ kind: "failed", error: e, during: "take" });
    }
  };

  // The take with what is owed, sent once; after a lost reply, each part again in its safe form.
  const takeOnce = async (owed: Owed, req: TakeRequest, now: number): Promise<TakeResult> => {
    const calls = [
      ...(owed.dead.length > 0 ? [parkCall(db, q, reader, owed.dead, { ...bounds, now })] : []),
      ...recordCalls(db, sub, owed.records),
      takeCall(db, q, req),
    ];
    try {
      const replies = await sendBatch(db.once, calls);
      if (owed.dead.length > 0) noteParked(owed.dead, readPark(replyValue(replies[0])), now);
      return readTake(replyValue(replies.at(-1)));
    } catch (e) {
      if (!isOutcomeUnknown(e)) throw e;
    }
    if (owed.dead.length > 0)
      noteParked(owed.dead, await park(db, q, reader, owed.dead, { ...bounds, now }), now);
    await recordAgain(db, sub, owed.records);
    return take(db.redis, db, q, { ...req, cursor });
  };

  // Dead letters Redis refused to store stay pending: retried after one base delay.
  const noteParked = (
    letters: Letter[],
    parked: { parked: number; refusal: string },
    now: number,
  ) => {
    const refused = letters.slice(parked.parked);
    run = refusedDeadLetters(run, refused, now + config.retryBaseMs, parked.refusal, now);
  };

  const takeRequest = (owed: Owed, now: number): TakeRequest => ({
    reader,
    holder: WAITING_ROOM,
    now,
    count: 0,
    visibilityMs,
    byteBudget: ctx.readBytes,
    maxAttempts: sub.maxAttempts,
    types: sub.types,
    ack: owed.ack,
    nack: owed.nack.map((n) => ({ ...n, visibleInMs: Math.max(0, n.at - now) })),
  });

  const send = async (batch: Batch) => {
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

  const stopTaking = (why: End) => {
    end ??= why;
  };

  for (;;) {
    const now = clock();
    const stop = run.progress.stop;
    if (stop) {
      // Nothing more goes out: what was taken and not sent comes back when the backoff ends.
      const at = stop.kind === "backoff" ? stop.at : now;
      const unsent = buffer.splice(0);
      meter.unhold(unsent.length);
      run = giveBack(
        run,
        unsent.flatMap((b) => b.entries),
        at,
      );
    }
    while (buffer.length > 0 && sending < target) {
      sending++;
      void send(buffer.shift()!);
    }
    const wants = !stop && end === null && (reading || look);
    if (wants && !taking && buffer.length === 0 && sending <= target / 2) {
      // Twice the free requests' worth: what is not sent at once waits for one of them to end. A
      // paced subscription takes no more than it may start within one timeout.
      const batches = Math.min(target * 2 - sending, paceMs > 0 ? maxPaced : Infinity);
      // The take's round trip, and a POST per batch it may bring.
      const fit = Math.min(batches, meter.left - 1);
      if (fit < 1 || !meter.allows(now, 2)) stopTaking("budget");
      else {
        const count = takeCount({
          batchSize: sub.batchSize,
          batches: fit,
          largestBytes: largest || config.maxMessageBytes,
          readBytes: ctx.readBytes,
        });
        taking = true;
        void flush(count, look);
      }
    }
    if (!taking && sending === 0 && buffer.length === 0 && !(wants && end === null)) break;
    const event = await mail.next();
    const at = clock();
    switch (event.kind) {
      case "taken": {
        taking = false;
        const { result } = event;
        run = filtered(run, result.filtered);
        largest = Math.max(largest, result.largest);
        for (const t of result.taken) if (compareIds(t.entryId, cursor) > 0) cursor = t.entryId;
        if (result.dead.length > 0) {
          const reason =
            "its deliverer stopped before the answer was recorded, on the last attempt";
          const letters = result.dead.map((d) => ({
            id: d.entryId,
            attempts: d.deliveries,
            error: reason,
          }));
          run = { ...run, owed: { ...run.owed, dead: [...run.owed.dead, ...letters] } };
        }
        // Looking again only while looks come back full: more may have run out.
        look = event.looked && result.taken.length >= event.count;
        if (result.read === "empty") reading = false;
        // More waits than this run can send at once, and the cap has room for more: another
        // invocation may join (each keeps at most six connections).
        if (result.read === "more" && result.room !== null && result.room > target) void ctx.join();
        const batches = cutBatches(result.taken, {
          batchSize: sub.batchSize,
          maxBatchBytes: config.maxBatchBytes,
        });
        // No room: if this run's own requests hold it, it takes again once they end; if other
        // deliverers (or the pending limit) hold it, the run ends and leaves the unit to them.
        if (result.read === "no-room" && sending + buffer.length + batches.length === 0) {
          stopTaking(result.room === 0 ? "busy" : "full");
        }
        meter.hold(batches.length);
        batches.forEach((entries, i) => {
          const startAt = result.paceAt === null ? at : result.paceAt + i * paceMs;
          // Leased when the take ran: no earlier than it was sent.
          buffer.push({ entries, takenAt: event.sentAt, startAt });
        });
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
        if (isReplyError(event.error, "NOGROUP")) stopTaking("lost");
        else {
          error ??= event.error instanceof Error ? event.error.message : String(event.error);
          console.error(`delivery to ${unitName(unit)} failed:`, event.error);
          stopTaking("lost");
        }
        break;
    }
  }
  meter.unhold(END_RESERVE);
  return finish();

  // The run's end: what is owed, the schedule exact, the reader gone, the report.
  async function finish(): Promise<Driven> {
    const stop = run.progress.stop;
    const kind: End = stop?.kind ?? end ?? "idle";
    const result = {
      tally: run.progress.tally,
      end: kind,
      health: null as Health,
      nextAt: null as number | null,
      ...(error ? { error } : {}),
    };
    if (kind === "lost") return result;
    const now = clock();
    try {
      if (run.owed.dead.length > 0) {
        const dead = run.owed.dead;
        run = { ...run, owed: { ...run.owed, dead: [] } };
        noteParked(dead, await park(db, q, reader, dead, { ...bounds, now }), now);
      }
      const owed = run.owed;
      const req = { ...takeRequest(owed, now), end: true };
      const report = {
        state: run.progress.state,
        now,
        disableAfterMs: config.disableAfterMs,
        wasFailing: job.wasFailing,
        pause: kind === "gone",
        repeat: false,
        writeId: crypto.randomUUID(),
        reader,
      };
      const after = scheduleAfter(kind, now);
      // The report before the take that lets the reader go: once the reader is gone from the
      // group, everything the run had to write is written.
      const n = owed.records.length;
      const calls = [
        ...recordCalls(db, sub, owed.records),
        reportCall(db, sub, report),
        takeCall(db, q, req),
        ...after,
      ];
      let ended: TakeResult;
      let health: unknown;
      try {
        const replies = await sendBatch(db.once, calls);
        health = replyValue(replies[n]);
        ended = readTake(replyValue(replies[n + 1]));
      } catch (e) {
        if (!isOutcomeUnknown(e)) throw e;
        await recordAgain(db, sub, owed.records);
        const again = reportCall(db, sub, { ...report, repeat: true });
        health = replyValue((await sendBatch(db.redis, [again]))[0]);
        ended = await take(db.redis, db, q, req);
        if (after.length > 0) await sendBatch(db.redis, after);
      }
      result.health = healthOf(health);
      result.nextAt = nextVisit(kind, now, ended.nextAt);
    } catch (e) {
      // The group went meanwhile: the caller finds out why (visit.ts).
      if (isReplyError(e, "NOGROUP")) return { ...result, end: "lost" };
      result.error = e instanceof Error ? e.message : String(e);
      console.error(`delivery to ${unitName(unit)} failed at its end:`, e);
    }
    return result;
  }

  // What each way of ending does to the unit's wake member (the end's take sets its retry member):
  //   backoff  nothing new read before the backoff ends (ZADD GT: only later)
  //   full     nothing new read for one base delay: retries must make room first
  //   budget   still due, at the back of the schedule (ZADD XX: only while it is there); with a
  //            queue `graceMs` later: the queue's task carries on, a cron pass only if it is lost
  //   gone     nothing scheduled: the subscription is paused until resumed
  function scheduleAfter(kind: End, now: number) {
    const due = db.keys.due();
    const wake = wakeMember(unit);
    const stop = run.progress.stop;
    switch (kind) {
      case "backoff":
        return [
          {
            add: (p: Pipeline) =>
              p.zadd(
                due,
                { gt: true },
                { score: stop?.kind === "backoff" ? stop.at : now, member: wake },
              ),
          },
        ];
      case "full":
        return [
          { add: (p: Pipeline) => p.zadd(due, { score: now + config.retryBaseMs, member: wake }) },
        ];
      case "budget":
        return [
          {
            add: (p: Pipeline) =>
              p.zadd(due, { xx: true }, { score: now + ctx.graceMs, member: wake }),
          },
        ];
      case "gone":
        return [{ add: (p: Pipeline) => p.zrem(due, wake, retryMember(unit)) }];
      default:
        return [];
    }
  }

  // When the unit wants its next visit: at once to carry on (budget), when a backoff ends or the
  // pending limit may have room, or when its first pending entry becomes visible.
  function nextVisit(kind: End, now: number, retryAt: number | null): number | null {
    const stop = run.progress.stop;
    const wants = [
      kind === "budget" ? now : null,
      kind === "full" ? now + config.retryBaseMs : null,
      stop?.kind === "backoff" ? stop.at : null,
      kind === "gone" ? null : retryAt,
    ].filter((t): t is number => t !== null);
    return wants.length === 0 ? null : Math.min(...wants);
  }
}
