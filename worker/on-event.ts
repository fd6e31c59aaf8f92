// What a deliverer run does with each event its steps post (drive.ts reads them one at a time):
// a take's entries become batches, an answer is judged and settled, a batch not sent goes back,
// a failure ends the run as well as it can. The folds into what is owed are pure (settle.ts).

import { unitName } from "../shared/keys.ts";
import { isReplyError } from "../shared/redis.ts";
import { compareIds, JOIN_AFTER_MS } from "../shared/streams.ts";
import { START_CONCURRENCY } from "../shared/subscription.ts";
import { attemptOf } from "./attempts.ts";
import { cutBatches } from "./batches.ts";
import { type Deliverer, type Event, endOf, FLOW_POLL_MS, targetFor } from "./deliverer.ts";
import { nextVisit } from "./ending.ts";
import { failureLine, judge, stops } from "./judge.ts";
import { filtered, giveBack, refusedDeadLetters, settle } from "./settle.ts";

type Of<K extends Event["kind"]> = Extract<Event, { kind: K }>;

export function onEvent(d: Deliverer, event: Event, at: number): void {
  // A request of its own ended: its flow slot is free for this run's next take, no wait.
  if (d.flowWaitUntil !== null && event.kind !== "taken") d.flowWaitUntil = at;
  switch (event.kind) {
    case "taken":
      onTaken(d, event, at);
      break;
    case "sent":
      onSent(d, event);
      break;
    case "unsent": {
      d.sending--;
      const stop = d.run.progress.stop;
      d.run = giveBack(d.run, event.batch.entries, stop?.kind === "backoff" ? stop.at : at);
      break;
    }
    case "failed":
      onFailed(d, event, at);
      break;
  }
}

const DIED_ON_LAST_ATTEMPT =
  "its deliverer stopped before the answer was recorded, on the last attempt";

function onTaken(d: Deliverer, event: Of<"taken">, at: number): void {
  const { config } = d.ctx;
  const { sub } = d.job;
  d.taking = false;
  const { taken, refused, refusal } = event.round;
  d.run = refusedDeadLetters(d.run, refused, at + config.retryBaseMs, refusal, at);
  d.run = filtered(d.run, taken.filtered);
  d.largest = Math.max(d.largest, taken.largest);
  if (taken.window !== null) {
    if (event.stored) d.window = taken.window;
    d.target = targetFor(taken.window.size, sub);
  }
  for (const t of taken.taken) if (compareIds(t.entryId, d.cursor) > 0) d.cursor = t.entryId;
  if (taken.dead.length > 0) {
    const letters = taken.dead.map((x) => ({
      id: x.entryId,
      attempts: x.deliveries,
      error: DIED_ON_LAST_ATTEMPT,
    }));
    d.run = { ...d.run, owed: { ...d.run.owed, dead: [...d.run.owed.dead, ...letters] } };
  }
  // Blocked by the flow key: the take asked nothing of the group, so it looks as it would have.
  const blocked = taken.flowWait !== null;
  // A request of its own that ended meanwhile freed a slot: take again at once.
  const ended = d.sending + d.buffer.length < event.own;
  d.flowWaitUntil = !blocked ? null : ended ? at : Math.min(taken.flowWait!, at + FLOW_POLL_MS);
  // Looking again only while looks come back full: more may have run out.
  if (!blocked) d.look = event.looked && taken.taken.length >= event.count;
  // Blocked, it read nothing: what it knew of a backlog still holds.
  if (!blocked) d.backlog = taken.read === "more";
  d.backlogSince = d.backlog ? (d.backlogSince ?? at) : null;
  // More has waited than this run could send for JOIN_AFTER_MS, and the cap has room for more:
  // another invocation may join (each keeps at most six connections). A backlog this run clears
  // in under a second asks for nobody, so concurrency grows only with a backlog that lasts, as a
  // publish joins (shared/streams.ts).
  // Not while the window is this run's own size: a run alone may take ahead of it (lua/take.ts:
  // room, up to maxConcurrency), but another invocation would find no request to send.
  const lasting = d.backlogSince !== null && at - d.backlogSince >= JOIN_AFTER_MS;
  const wider = taken.window === null || Math.floor(taken.window.size) > d.target;
  // The joiner reads the stored window: a run alone may have kept its growth (window.ts), and
  // the joiner would find the window it was told long ago and no room in it. So the first join
  // is asked once a take has told the window the run sends within (this one, or the next:
  // `telling`); a run that has asked tells as it grows (window.ts) and asks again at once.
  const joining = lasting && wider && taken.room !== null && taken.room > d.target;
  if (joining && (event.stored || d.joined)) {
    d.joined = true;
    void d.ctx.join();
  }
  d.telling = joining && !d.joined;
  // Whoever comes reads the window: from now on this run tells it as it grows.
  d.alone = taken.alone && !d.joined && !d.telling;
  // Twice its requests' worth while the cap leaves plenty of room: under a window, a run alone
  // holds the batches it sends next, so its takes do not shrink with the window.
  d.prefetch = taken.room === null || taken.room >= 2 * d.target ? d.target : 0;
  const batches = cutBatches(taken.taken, {
    batchSize: sub.batchSize,
    maxBatchBytes: config.maxBatchBytes,
  });
  if (sub.flow?.parallelism) {
    // The take counted ceil(taken / batchSize) requests under the flow key: batches the byte limit
    // cut beyond those go back, visible at once, their attempts as they were.
    const beyond = batches.splice(Math.ceil(taken.taken.length / sub.batchSize));
    d.run = giveBack(d.run, beyond.flat(), at);
  }
  // No room: if this run's own requests hold it, it takes again once they end; if other
  // deliverers (or the pending limit) hold it, the run ends and leaves the unit to them.
  if (taken.read === "no-room" && d.sending + d.buffer.length + batches.length === 0) {
    d.end ??= taken.room === 0 ? "busy" : "full";
  }
  // A stream: the take found batches to spare, so more has likely come by the time one ends.
  d.flowing = batches.length >= 2;
  d.meter.hold(batches.length);
  // Leased when the take ran: no earlier than it was sent.
  batches.forEach((entries, i) => {
    const paced = taken.paceAt === null ? at : taken.paceAt + i * d.paceMs;
    const flowed = taken.flowAt === null ? at : taken.flowAt + i * d.flowMs;
    d.buffer.push({ entries, takenAt: event.at, startAt: Math.max(paced, flowed) });
  });
  // A final round that found nothing more, and left nothing owed, ended the run. One whose read
  // found only messages the types filter left out read on: it goes on reading.
  const { owed } = d.run;
  const owes = owed.ack.length + owed.nack.length + owed.dead.length > 0;
  const readOn = taken.read === "some" || taken.read === "more";
  if (event.final && batches.length === 0 && !owes && !readOn && !blocked) {
    d.done = true;
    // The end's retry time covers what other deliverers hold too, so that one that died is
    // taken over when its visibility runs out.
    const retryAt =
      taken.nextAt === null ? d.retryAt : Math.min(taken.nextAt, d.retryAt ?? Infinity);
    d.nextAt = nextVisit(endOf(d), d.run.progress.stop, at, retryAt, config.retryBaseMs);
  }
}

function onSent(d: Deliverer, event: Of<"sent">): void {
  const { config } = d.ctx;
  const { sub, unit } = d.job;
  d.sending--;
  const { batch, answer } = event;
  // Backoff and Retry-After count from the answer (or the failure), not from the request's start.
  const answeredAt = event.at + event.durationMs;
  const outcome = judge(answer, batch.entries, {
    now: answeredAt,
    maxAttempts: sub.maxAttempts,
    jitterKey: sub.name,
    policy: config,
    window: d.window?.size ?? START_CONCURRENCY,
  });
  const attempt = attemptOf(
    batch.entries,
    answer,
    event.at,
    event.durationMs,
    event.trace,
    d.job.sub.ordered && d.job.unit.kind === "main",
  );
  d.run = settle(d.run, { batch: batch.entries, outcome, attempt, at: answeredAt }, unit.kind);
  const line = failureLine(d.endpoint, outcome, batch.entries, answeredAt);
  if (line) console.warn(line);
  if (stops(outcome)) d.reading = false;
}

function onFailed(d: Deliverer, event: Of<"failed">, at: number): void {
  if (event.during === "take") d.taking = false;
  else d.sending--;
  if (isReplyError(event.error, "NOGROUP")) d.end = "lost";
  else {
    d.error ??= event.error instanceof Error ? event.error.message : String(event.error);
    console.error(`delivery to ${unitName(d.job.unit)} failed:`, event.error);
    if (d.end !== "lost") d.end = "error";
  }
  // A final round that failed is tried once more (what it carried is still owed); then nothing
  // more can be written.
  if (event.during === "take" && event.final && (d.end === "lost" || ++d.finalFailures > 1)) {
    d.done = true;
    const { stop } = d.run.progress;
    d.nextAt = nextVisit(endOf(d), stop, at, d.retryAt, d.ctx.config.retryBaseMs);
  }
}
