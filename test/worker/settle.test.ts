import { describe, expect, it } from "vitest";
import type { Result } from "../../shared/counters.ts";
import type { Taken } from "../../shared/engine/take.ts";
import { type Attempt, noCounts } from "../../worker/attempts.ts";
import type { Outcome } from "../../worker/judge.ts";
import {
  filtered,
  giveBack,
  type Owed,
  type Progress,
  type Run,
  refusedDeadLetters,
  type Sent,
  settle,
  startRun,
  stateWrites,
} from "../../worker/settle.ts";

const entry = (n: number, attempt = 1): Taken => ({
  entryId: `100-${n}`,
  messageId: `100-${n}`,
  attempt,
  text: `{"id":"100-${n}","type":null,"data":1,"publishedAt":"1970-01-01T00:00:00.100Z","attempt":${attempt}}`,
  bytes: 1,
  trace: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" },
  orderingKey: null,
});
const [a, b, c] = [entry(1), entry(2), entry(3)];

/** A request's attempt, its record told apart by `at`; no latencies unless given. */
const attempt = (result: Result, at: number, latenciesMs: number[] = []): Attempt => ({
  record: {
    at,
    attempt: 1,
    messages: 2,
    firstId: "100-1",
    lastId: "100-2",
    status: result === "success" ? 200 : 500,
    durationMs: 1,
    error: result === "success" ? null : "HTTP 500",
    body: "",
    traceparent: null,
    held: [],
  },
  result,
  latenciesMs,
});
const resultOf = (o: Outcome): Result =>
  o.kind === "delivered" || o.kind === "partial" ? "success" : "http_5xx";
/** The request that carried `batch` at `at` ended with `outcome`. */
const sent = (outcome: Outcome, batch: Taken[] = [a, b], at = 5): Sent => ({
  batch,
  outcome,
  attempt: attempt(resultOf(outcome), at),
  at,
});
const settleAll = (requests: Sent[], kind: "main" | "redrive" = "main", run = startRun()): Run =>
  requests.reduce((r, s) => settle(r, s, kind), run);

const delivered: Outcome = { kind: "delivered" };
const partial = (retryAt: number | null, dead: Taken[] = []): Outcome => ({
  kind: "partial",
  retries: retryAt === null ? [] : [{ at: retryAt, entries: [b] }],
  dead,
  reason: "no",
});
const failed = (retryAt: number, retried: Taken[] = [a, b], dead: Taken[] = []): Outcome => ({
  kind: "failed",
  retries: retried.length === 0 ? [] : [{ at: retryAt, entries: retried }],
  dead,
  retryAt,
  reason: "HTTP 500",
  congestion: false,
  backoff: true,
});
/** A 429 (or 503, a timeout): congestion; backing the subscription off or not (judge.ts). */
const congested = (retryAt: number, backoff: boolean): Outcome => ({
  kind: "failed",
  retries: [{ at: retryAt, entries: [a, b] }],
  dead: [],
  retryAt,
  reason: "HTTP 429",
  congestion: true,
  backoff,
});
const none = { succeeded: 0, congestedAt: 0 };
const succeeded = { succeeded: 1, congestedAt: 0 };
const gone: Outcome = { kind: "gone", reason: "HTTP 410: the endpoint is gone" };
const counted = (result: Result) => ({ attempts: { [result]: 1 }, latency: {}, latencyMs: 0 });

describe("what a request's outcome owes Redis", () => {
  it.each<[string, Taken[], Outcome, Omit<Owed, "records">]>([
    [
      "delivered: every message acked",
      [a, b],
      delivered,
      { ack: ["100-1", "100-2"], nack: [], dead: [], signals: succeeded },
    ],
    [
      "partial: the rest acked, the rejected made visible at their retry time",
      [a, b],
      partial(50),
      { ack: ["100-1"], nack: [{ ids: ["100-2"], at: 50 }], dead: [], signals: succeeded },
    ],
    [
      "partial out of attempts: the rejected dead-lettered with its attempts and the reason",
      [a, entry(2, 4)],
      partial(null, [entry(2, 4)]),
      {
        ack: ["100-1"],
        nack: [],
        dead: [{ id: "100-2", attempts: 4, error: "no" }],
        signals: succeeded,
      },
    ],
    [
      "partial at two times: a nack for each",
      [a, b, c],
      {
        kind: "partial",
        retries: [
          { at: 50, entries: [b] },
          { at: 70, entries: [c] },
        ],
        dead: [],
        reason: "no",
      },
      {
        ack: ["100-1"],
        nack: [
          { ids: ["100-2"], at: 50 },
          { ids: ["100-3"], at: 70 },
        ],
        dead: [],
        signals: succeeded,
      },
    ],
    [
      "failed: nothing acked, the batch visible at its retry time",
      [a, b],
      failed(90),
      { ack: [], nack: [{ ids: ["100-1", "100-2"], at: 90 }], dead: [], signals: none },
    ],
    [
      "failed with congestion (429, 503, timeout, network): the same, and when it was sent",
      [a, b],
      congested(90, false),
      {
        ack: [],
        nack: [{ ids: ["100-1", "100-2"], at: 90 }],
        dead: [],
        signals: { succeeded: 0, congestedAt: 5 },
      },
    ],
    [
      "failed with one out of attempts: the rest retried, that one dead-lettered",
      [a, entry(2, 3)],
      failed(90, [a], [entry(2, 3)]),
      {
        ack: [],
        nack: [{ ids: ["100-1"], at: 90 }],
        dead: [{ id: "100-2", attempts: 3, error: "HTTP 500" }],
        signals: none,
      },
    ],
    [
      "gone: nothing acked or lost, the batch visible again at once",
      [a, b],
      gone,
      { ack: [], nack: [{ ids: ["100-1", "100-2"], at: 5 }], dead: [], signals: none },
    ],
  ])("%s", (_, batch, outcome, owed) => {
    const request = sent(outcome, batch);
    const run = settle(startRun(), request, "main");
    expect(run.owed).toEqual({ ...owed, records: [request.attempt.record] });
  });
});

describe("what a request's outcome does to the run's progress", () => {
  it.each<[string, Outcome, Progress]>([
    [
      "delivered: counted, a success with the last id acked",
      delivered,
      {
        tally: { delivered: 2, retried: 0, deadLettered: 0, filtered: 0 },
        state: {
          success: { at: 5, lastAckedId: "100-2" },
          failuresSince: 0,
          error: null,
          counts: counted("success"),
        },
        stop: null,
      },
    ],
    [
      "partial: a success (the endpoint answered 2xx) and the rejection as the last error",
      partial(50),
      {
        tally: { delivered: 1, retried: 1, deadLettered: 0, filtered: 0 },
        state: {
          success: { at: 5, lastAckedId: "100-1" },
          failuresSince: 0,
          error: { at: 5, error: "no" },
          counts: counted("success"),
        },
        stop: null,
      },
    ],
    [
      "partial out of attempts: counted dead-lettered, the run goes on",
      partial(null, [entry(2, 4)]),
      {
        tally: { delivered: 1, retried: 0, deadLettered: 1, filtered: 0 },
        state: {
          success: { at: 5, lastAckedId: "100-1" },
          failuresSince: 0,
          error: { at: 5, error: "no" },
          counts: counted("success"),
        },
        stop: null,
      },
    ],
    [
      "failed: a failed request, and a backoff until its retry time",
      failed(90),
      {
        tally: { delivered: 0, retried: 2, deadLettered: 0, filtered: 0 },
        state: {
          success: null,
          failuresSince: 1,
          error: { at: 5, error: "HTTP 500" },
          counts: counted("http_5xx"),
        },
        stop: { kind: "backoff", at: 90 },
      },
    ],
    [
      "congestion the window answers: a failed request, no backoff (the rest go on)",
      congested(90, false),
      {
        tally: { delivered: 0, retried: 2, deadLettered: 0, filtered: 0 },
        state: {
          success: null,
          failuresSince: 1,
          error: { at: 5, error: "HTTP 429" },
          counts: counted("http_5xx"),
        },
        stop: null,
      },
    ],
    [
      "failed with every message dead: a failed request, no backoff (nothing left to retry)",
      failed(90, [], [entry(1, 3), entry(2, 3)]),
      {
        tally: { delivered: 0, retried: 0, deadLettered: 2, filtered: 0 },
        state: {
          success: null,
          failuresSince: 1,
          error: { at: 5, error: "HTTP 500" },
          counts: counted("http_5xx"),
        },
        stop: null,
      },
    ],
    [
      "gone: a failed request, the pause in the error, and the run stopped",
      gone,
      {
        tally: { delivered: 0, retried: 0, deadLettered: 0, filtered: 0 },
        state: {
          success: null,
          failuresSince: 1,
          error: { at: 5, error: "HTTP 410: the endpoint is gone; subscription paused" },
          counts: counted("http_5xx"),
        },
        stop: { kind: "gone" },
      },
    ],
  ])("%s", (_, outcome, progress) => {
    expect(settle(startRun(), sent(outcome), "main").progress).toEqual(progress);
  });
});

describe("a run of requests", () => {
  it("adds up failures while no success comes, and starts over after one", () => {
    const twice = settleAll([sent(failed(90, [a]), [a], 1), sent(failed(95, [b]), [b], 2)]);
    expect(twice.progress.state).toMatchObject({ success: null, failuresSince: 2 });
    const recovered = settleAll([sent(delivered, [c], 3)], "main", twice);
    expect(recovered.progress.state).toMatchObject({
      success: { at: 3, lastAckedId: "100-3" },
      failuresSince: 0,
      error: { at: 2, error: "HTTP 500" },
    });
    const again = settleAll([sent(failed(99, [a]), [a], 4)], "main", recovered);
    expect(again.progress.state).toMatchObject({ success: { at: 3 }, failuresSince: 1 });
  });

  it("owes the window its successes and the latest congested request's start", () => {
    const run = settleAll([
      sent(delivered, [a], 1),
      sent(congested(90, false), [b], 7),
      sent(congested(90, false), [c], 4),
      sent(failed(90, [a]), [a], 9),
      sent(partial(50), [a, b], 3),
    ]);
    // The 500 is not congestion: the latest congested request is the one sent at 7.
    expect(run.owed.signals).toEqual({ succeeded: 2, congestedAt: 7 });
  });

  it("only moves a backoff later: of two, the later holds", () => {
    const run = settleAll([sent(failed(80)), sent(failed(30)), sent(failed(60))]);
    expect(run.progress.stop).toEqual({ kind: "backoff", at: 80 });
    expect(settleAll([sent(failed(120))], "main", run).progress.stop).toEqual({
      kind: "backoff",
      at: 120,
    });
  });

  it("stays stopped as gone whatever backoff comes before or after", () => {
    expect(settleAll([sent(failed(80)), sent(gone)]).progress.stop).toEqual({ kind: "gone" });
    expect(settleAll([sent(gone), sent(failed(80))]).progress.stop).toEqual({ kind: "gone" });
  });

  it("carries every request's record to the next round trip, oldest first, and counts them", () => {
    const run = settleAll([
      { ...sent(delivered, [a], 1), attempt: attempt("success", 1, [5, 2000]) },
      sent(failed(90, [b]), [b], 2),
    ]);
    expect(run.owed.records.map((r) => r.at)).toEqual([1, 2]);
    // 5 ms (<= 10 ms: bucket 0) and 2000 ms (<= 2.5 s: bucket 7).
    expect(run.progress.state.counts).toEqual({
      attempts: { success: 1, http_5xx: 1 },
      latency: { 0: 1, 7: 1 },
      latencyMs: 2005,
    });
  });

  it("appends each request's acks and nacks to what is owed already", () => {
    const run = settleAll([
      sent(delivered, [a], 1),
      sent(failed(90, [b]), [b], 2),
      sent(delivered, [c], 3),
    ]);
    expect(run.owed).toMatchObject({ ack: ["100-1", "100-3"], nack: [{ ids: ["100-2"], at: 90 }] });
  });

  it("never records a redrive stream's entry id as the last acked one", () => {
    const redriven = { ...a, entryId: "0-1" };
    const run = settleAll([sent(delivered, [redriven], 5)], "redrive");
    expect(run.progress.state.success).toEqual({ at: 5, lastAckedId: null });
    expect(stateWrites(run.progress.state, (f) => f).set).not.toHaveProperty("lastAckedId");
  });

  it("keeps the last acked id of an earlier request when a later one acks nothing", () => {
    const run = settleAll([sent(delivered, [a], 1), sent(partial(50), [b], 2)]);
    expect(run.progress.state.success).toEqual({ at: 2, lastAckedId: "100-1" });
  });
});

describe("giving back batches taken and not sent", () => {
  it("makes them visible at the time given, with the attempt they had before the take", () => {
    const run = giveBack(startRun(), [entry(1, 1), entry(2, 3), entry(3, 1)], 70);
    expect(run.owed.nack).toEqual([
      { ids: ["100-1", "100-3"], at: 70, retryCount: 0 },
      { ids: ["100-2"], at: 70, retryCount: 2 },
    ]);
    expect(run.progress).toEqual(startRun().progress);
  });

  it("owes nothing for nothing given back", () => {
    const run = startRun();
    expect(giveBack(run, [], 70)).toBe(run);
  });
});

describe("entries the types filter acked", () => {
  it("are counted filtered, and owe nothing", () => {
    const run = filtered(filtered(startRun(), 2), 3);
    expect(run.progress.tally).toEqual({ delivered: 0, retried: 0, deadLettered: 0, filtered: 5 });
    expect(run.owed).toEqual(startRun().owed);
  });
});

describe("dead letters Redis refused to store", () => {
  const letters = [
    { id: "100-1", attempts: 3, error: "HTTP 500" },
    { id: "100-2", attempts: 3, error: "HTTP 500" },
  ];
  const dead = settleAll([sent(failed(90, [], [entry(1, 3), entry(2, 3)]), [a, b], 5)]);

  it("are retried at the time given instead, no longer counted dead-lettered", () => {
    const run = refusedDeadLetters(dead, letters.slice(1), 30_005, "OOM", 7);
    expect(run.owed.nack).toEqual([{ ids: ["100-2"], at: 30_005 }]);
    expect(run.progress.tally.deadLettered).toBe(1);
  });

  it("make the refusal the last error, at the time it happened (not the retry's)", () => {
    const run = refusedDeadLetters(dead, letters, 30_005, "OOM", 7);
    expect(run.progress.state.error).toEqual({
      at: 7,
      error: "2 message(s) could not be dead-lettered: OOM",
    });
  });

  it("change nothing when there are none", () => {
    expect(refusedDeadLetters(dead, [], 30_005, "OOM", 7)).toBe(dead);
  });
});

describe("the state hash writes", () => {
  const field = (fact: string) => `s:${fact}`;
  it("sets the count after a success, with its time and last acked id", () => {
    expect(
      stateWrites(
        {
          counts: noCounts(),
          success: { at: 3, lastAckedId: "1-1" },
          failuresSince: 2,
          error: null,
        },
        field,
      ),
    ).toEqual({
      set: { "s:failures": "2", "s:lastSuccessAt": "3", "s:lastAckedId": "1-1" },
      increment: 0,
    });
  });

  it("adds the failures to the count when no success came, and sets the last error", () => {
    expect(
      stateWrites(
        { counts: noCounts(), success: null, failuresSince: 2, error: { at: 4, error: "e" } },
        field,
      ),
    ).toEqual({ set: { "s:lastError": "e", "s:lastErrorAt": "4" }, increment: 2 });
  });
});
