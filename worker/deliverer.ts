// One deliverer run's parts, shared by its steps (drive.ts runs the loop): what is fixed for the
// run (its reader, endpoint, limits), and its state. The steps that start work (take-step.ts,
// send-step.ts) run on their own and post what happened to the run's mailbox; the loop reads one
// event at a time and folds it in (on-event.ts), so the state changes in one place at a time.

import type { Config } from "../shared/config.ts";
import { deadLetterBounds } from "../shared/engine/dead-letters.ts";
import { channelQueue, newReader, type Queue, redriveQueue } from "../shared/engine/queue.ts";
import type { Taken, Window } from "../shared/engine/take.ts";
import { retryMember, type Unit, wakeMember } from "../shared/keys.ts";
import { type Meter, POST_SLOTS } from "../shared/meter.ts";
import type { Db } from "../shared/redis.ts";
import { type Subscription, signingSecrets } from "../shared/subscription.ts";
import type { TraceContext } from "../shared/trace.ts";
import type { Answer, Endpoint } from "./deliver.ts";
import type { End } from "./ending.ts";
import type { Health } from "./report.ts";
import type { Reader, Round } from "./rounds.ts";
import { type Run, startRun } from "./settle.ts";

/** What every step of delivery runs with: the invocation's metered clients, its settings, time. */
export interface Invocation {
  /** The invocation's clients, metered by its meter (its budget). */
  db: Db;
  config: Config;
  clock: () => number;
  /** Waits this many ms (a paced request, a task that came a little early: consumer.ts). */
  sleep: (ms: number) => Promise<void>;
}

export interface DriveContext extends Invocation {
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

// Room kept after a request a batch's lease must outlive: the round trip that settles it, and the
// clock difference between the Worker and Redis.
export const VISIBILITY_MARGIN_MS = 5_000;
/**
 * How long what a run takes stays invisible to other readers: a batch may wait for a request of
 * the same take to end before its own starts, then takes its own timeout. A run that dies leaves
 * its messages to be redelivered that long after it took them.
 */
export const visibilityFor = (timeoutMs: number) => 2 * timeoutMs + VISIBILITY_MARGIN_MS;

/**
 * How often a run the flow key blocks, with nothing in flight, takes again: the runs holding its
 * slots let go of them at their next take, which the key's state cannot announce. The script's
 * call, 1 GET and the SET that says it waits, each time (lua/take.ts: flow), within the
 * invocation's deadline and budget; its waiting record lasts 1 s, so it must try within that.
 */
export const FLOW_POLL_MS = 250;

export interface Batch {
  entries: Taken[];
  takenAt: number;
  /** Not started before this (its pace slot). */
  startAt: number;
}

export type Event =
  | {
      kind: "taken";
      round: Round;
      count: number;
      looked: boolean;
      final: boolean;
      at: number;
      /** Requests the run had in flight or taken when it asked (the take's `cap.own`). */
      own: number;
      /** Its window is the stored one (read or written), not the run's own grown copy. */
      stored: boolean;
    }
  | {
      kind: "sent";
      batch: Batch;
      answer: Answer;
      at: number;
      durationMs: number;
      /** The request's trace context (its traceparent header). */
      trace: TraceContext;
    }
  | { kind: "unsent"; batch: Batch }
  | { kind: "failed"; error: unknown; during: "take" | "send"; final?: boolean };

/** A run under way. */
export interface Deliverer {
  ctx: DriveContext;
  job: Job;
  meter: Meter;
  reader: Reader;
  endpoint: Endpoint;
  visibilityMs: number;
  /**
   * Requests in flight at once in this run: the subscription's window (its last take's; before
   * any, maxConcurrency), within POST_SLOTS and the flow key's parallelism. The take's cap keeps
   * every run within the window.
   */
  target: number;
  /** The subscription's window of requests in flight, as this run last read or wrote it. */
  window: Window | null;
  /** Ms between request starts (maxRequestsPerSecond); 0: unpaced. */
  paceMs: number;
  /** Ms between request starts under the subscription's flow key (its flowRate); 0: none. */
  flowMs: number;
  /**
   * The flow key left no room: take again then (a poll: other runs let go of their slots at
   * their next take, sooner than their leases end); null: not blocked.
   */
  flowWaitUntil: number | null;
  /** Batches one take may bring: a paced subscription's that it can start within a timeout. */
  batchesAtMost: number;
  mail: Mailbox<Event>;
  /** Taken, not sent yet. */
  buffer: Batch[];
  /** One per report written (rounds.ts: finalRound). */
  health: Health[];
  /** What is owed to Redis and the run's progress (settle.ts: pure). */
  run: Run;
  /** Look for entries whose visibility ran out: the retry was due, and looks came back full. */
  look: boolean;
  /** Read new entries: the wake was due, and nothing stopped the run (its final round reads too). */
  reading: boolean;
  /** The last take came back full: more waits, so it takes again while requests are in flight. */
  backlog: boolean;
  /** The last take found more than one batch: a stream, more has likely come since. */
  flowing: boolean;
  /**
   * Batches taken beyond those that go out at once, so that a request that ends finds the next
   * waiting: only while the cap leaves room for as many again (what this run holds counts
   * against the cap, and other invocations may want a share of it).
   */
  prefetch: number;
  /**
   * Its last take found no other reader holding entries under the window, and it asked no other
   * invocation to join: its window's growth waits for its end (window.ts).
   */
  alone: boolean;
  /** It asked another invocation to join it. */
  joined: boolean;
  /** It will ask another invocation to join once its next take has told its kept growth. */
  telling: boolean;
  /** No take yet: the first is made whatever is in flight elsewhere. */
  first: boolean;
  taking: boolean;
  sending: number;
  /** The newest entry taken: a lost take's reply is recovered from it. */
  cursor: string;
  /** The largest entry taken (bytes): the size hint of the next take. */
  largest: number;
  end: End | null;
  /** The earliest time this run made entries visible again at (its nacks and give-backs). */
  retryAt: number | null;
  /** Since when its takes have come back full, without a break; null: not now. */
  backlogSince: number | null;
  nextAt: number | null;
  error?: string;
  done: boolean;
  finalFailures: number;
}

export function queueOf(db: Db, unit: Unit, sub: Subscription): Queue {
  const schedule = { retry: retryMember(unit), wake: wakeMember(unit) };
  return unit.kind === "main" ? channelQueue(db, sub, schedule) : redriveQueue(db, sub, schedule);
}

/**
 * Requests one run keeps in flight for a window: an invocation holds at most POST_SLOTS, and a
 * flow key's parallelism bounds them too.
 */
export const targetFor = (window: number, sub: Subscription) =>
  Math.max(1, Math.min(Math.floor(window), POST_SLOTS, sub.flow?.parallelism ?? Infinity));

/** A run of the job, nothing taken yet. */
export function startDeliverer(ctx: DriveContext, job: Job): Deliverer {
  const { db, config, clock } = ctx;
  const { sub, unit } = job;
  const paceMs = sub.maxRequestsPerSecond === null ? 0 : 1000 / sub.maxRequestsPerSecond;
  const flowRate = sub.flow?.rate ?? null;
  return {
    ctx,
    job,
    meter: db.meter,
    reader: {
      db,
      sub,
      unit,
      q: queueOf(db, unit, sub),
      name: newReader(),
      bounds: deadLetterBounds(config),
    },
    endpoint: {
      channel: sub.channel,
      subscription: sub.name,
      group: sub.group,
      url: sub.url,
      timeoutMs: sub.timeoutMs,
      secrets: signingSecrets(sub, clock()),
    },
    visibilityMs: visibilityFor(sub.timeoutMs),
    target: targetFor(sub.maxConcurrency, sub),
    window: null,
    paceMs,
    flowMs: flowRate === null ? 0 : 1000 / flowRate,
    flowWaitUntil: null,
    batchesAtMost: paceMs > 0 ? Math.max(1, Math.floor(sub.timeoutMs / paceMs)) : Infinity,
    mail: new Mailbox<Event>(),
    buffer: [],
    health: [],
    run: startRun(),
    look: job.look,
    reading: job.read,
    backlog: true,
    flowing: false,
    prefetch: 0,
    alone: false,
    joined: false,
    telling: false,
    first: true,
    taking: false,
    sending: 0,
    cursor: "0-0",
    largest: 0,
    end: null,
    retryAt: null,
    backlogSince: null,
    nextAt: null,
    done: false,
    finalFailures: 0,
  };
}

/** How the run ends so far: a stop (backoff, gone), else what ended it, else idle. */
export const endOf = (d: Deliverer): End => d.run.progress.stop?.kind ?? d.end ?? "idle";

/** A queue of events, awaited one at a time. */
export class Mailbox<T> {
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
