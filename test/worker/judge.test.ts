import { describe, expect, it } from "vitest";
import type { Taken } from "../../shared/engine/take.ts";
import type { Answer } from "../../worker/deliver.ts";
import { failureLine, judge, type Outcome, REJECTED_REASON, stops } from "../../worker/judge.ts";
import { retryDelayMs } from "../../worker/retry.ts";

const policy = { retryBaseMs: 1000, retryMaxMs: 60_000 };
const options = { now: 10_000, maxAttempts: 3, jitterKey: "sub", policy, window: 4 };
/** A message of the channel (its entry id is its message id), on its `attempt`th delivery. */
const entry = (n: number, attempt = 1): Taken => ({
  entryId: `100-${n}`,
  messageId: `100-${n}`,
  attempt,
  text: `{"id":"100-${n}","type":null,"data":1,"publishedAt":"1970-01-01T00:00:00.100Z","attempt":${attempt}}`,
  bytes: 1,
  trace: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" },
  orderingKey: null,
});
const ok = (failed: string[] = []): Answer => ({
  ok: true,
  failedIds: new Set(failed),
  answer: 200,
  body: "",
});
const failed = (status: number | null, retryAfterMs: number | null = null, body = ""): Answer => ({
  ok: false,
  status,
  reason: status === null ? "timeout after 1 ms" : `HTTP ${status}`,
  retryAfterMs,
  answer: status ?? "timeout",
  body,
});
/** When a message that failed its `attempt`th delivery is due again, by the schedule. */
const due = (attempt: number) => options.now + retryDelayMs(attempt, "sub", policy);

describe("judging a request", () => {
  it("counts a 2xx as delivered for every message", () => {
    expect(judge(ok(), [entry(1), entry(2)], options)).toEqual({ kind: "delivered" });
  });

  it("ignores ids a 2xx lists in failed that the batch does not hold", () => {
    expect(judge(ok(["100-9"]), [entry(1)], options)).toEqual({ kind: "delivered" });
  });

  it("retries the ids a 2xx lists in failed at their backoff, and delivers the rest", () => {
    expect(judge(ok(["100-2"]), [entry(1), entry(2)], options)).toEqual({
      kind: "partial",
      retries: [{ at: due(1), entries: [entry(2)] }],
      dead: [],
      reason: REJECTED_REASON,
    });
  });

  it("knows a listed message by its message id, not its entry id (a redriven message)", () => {
    const redriven = { ...entry(2), entryId: "0-1" };
    expect(judge(ok(["100-2"]), [entry(1), redriven], options)).toMatchObject({
      kind: "partial",
      retries: [{ entries: [redriven] }],
    });
  });

  it("dead-letters a rejected message that used its last attempt", () => {
    expect(judge(ok(["100-2"]), [entry(1), entry(2, 3)], options)).toEqual({
      kind: "partial",
      retries: [],
      dead: [entry(2, 3)],
      reason: REJECTED_REASON,
    });
  });

  it("groups the retries by their time, earliest first", () => {
    const batch = [entry(1, 2), entry(2, 1), entry(3, 2)];
    expect(judge(ok(["100-1", "100-2", "100-3"]), batch, options)).toMatchObject({
      retries: [
        { at: due(1), entries: [entry(2, 1)] },
        { at: due(2), entries: [entry(1, 2), entry(3, 2)] },
      ],
    });
  });

  it.each<[number | null]>([[500], [303], [404], [null]])(
    "fails the whole batch on status %s, backing off by the schedule",
    (status) => {
      expect(judge(failed(status), [entry(1), entry(2)], options)).toEqual({
        kind: "failed",
        retries: [{ at: due(1), entries: [entry(1), entry(2)] }],
        dead: [],
        retryAt: due(1),
        reason: status === null ? "timeout after 1 ms" : `HTTP ${status}`,
        // A timeout is congestion as well as a failure; a status other than 429 or 503 is not.
        congestion: status === null,
        backoff: true,
      });
    },
  );

  it.each([429, 503])(
    "takes a %i without Retry-After for congestion: retried, while the rest go on",
    (status) => {
      expect(judge(failed(status), [entry(1)], options)).toMatchObject({
        kind: "failed",
        retries: [{ at: due(1), entries: [entry(1)] }],
        congestion: true,
        backoff: false,
      });
    },
  );

  it("backs off on a 429 at a window of one: there is nothing left to shrink", () => {
    expect(judge(failed(429), [entry(1)], { ...options, window: 1 })).toMatchObject({
      congestion: true,
      backoff: true,
    });
  });

  it("takes a connection error for congestion, and backs off on it", () => {
    const reset: Answer = {
      ok: false,
      status: null,
      reason: "network error: reset",
      retryAfterMs: null,
      answer: "network",
      body: "",
    };
    expect(judge(reset, [entry(1)], options)).toMatchObject({ congestion: true, backoff: true });
  });

  it.each([429, 503])("waits as long as a %i's Retry-After asks when that is longer", (status) => {
    expect(judge(failed(status, 20_000), [entry(1)], options)).toMatchObject({
      kind: "failed",
      retries: [{ at: options.now + 20_000 }],
      retryAt: options.now + 20_000,
      // Retry-After holds the whole subscription back.
      congestion: true,
      backoff: true,
    });
  });

  it("retries a batch of several attempts together when Retry-After outlasts every backoff", () => {
    expect(judge(failed(503, 20_000), [entry(1, 1), entry(2, 2)], options)).toMatchObject({
      retries: [{ at: options.now + 20_000, entries: [entry(1, 1), entry(2, 2)] }],
    });
  });

  it("never waits less than its own schedule, whatever Retry-After says", () => {
    expect(judge(failed(429, 1), [entry(1)], options)).toMatchObject({
      retries: [{ at: due(1) }],
      retryAt: due(1),
    });
  });

  it("caps Retry-After at RETRY_MAX_MS", () => {
    expect(judge(failed(503, 10 * 60_000), [entry(1)], options)).toMatchObject({
      retryAt: options.now + policy.retryMaxMs,
    });
  });

  it("treats 410 as gone: nothing retried, nothing dead-lettered, even on the last attempt", () => {
    expect(judge(failed(410), [entry(1, 3)], options)).toEqual({
      kind: "gone",
      reason: "HTTP 410: the endpoint is gone",
    });
  });

  it("keeps the first KiB of a failed answer's body in the reason (lastError), after the status", () => {
    expect(judge(failed(503, null, '{"error":"db down"}'), [entry(1)], options)).toMatchObject({
      kind: "failed",
      reason: 'HTTP 503; response: {"error":"db down"}',
    });
    expect(judge(failed(410, null, "bye"), [entry(1)], options)).toMatchObject({
      kind: "gone",
      reason: "HTTP 410: the endpoint is gone; response: bye",
    });
  });

  it("dead-letters what used its last attempt when the request fails, and retries the rest", () => {
    expect(judge(failed(500), [entry(1, 3), entry(2, 1)], options)).toMatchObject({
      kind: "failed",
      retries: [{ at: due(1), entries: [entry(2, 1)] }],
      dead: [entry(1, 3)],
      retryAt: due(1),
    });
  });

  it("backs off, when every message is dead, as long as the first would have waited", () => {
    expect(judge(failed(500), [entry(1, 3), entry(2, 4)], options)).toEqual({
      kind: "failed",
      retries: [],
      dead: [entry(1, 3), entry(2, 4)],
      retryAt: due(3),
      reason: "HTTP 500",
      congestion: false,
      backoff: true,
    });
  });
});

describe("which outcomes stop a deliverer", () => {
  const retry = [{ at: 2, entries: [entry(1)] }];
  const failing: Extract<Outcome, { kind: "failed" }> = {
    kind: "failed",
    retries: retry,
    dead: [],
    retryAt: 2,
    reason: "",
    congestion: false,
    backoff: true,
  };
  it.each<[string, boolean, Outcome]>([
    ["delivered", false, { kind: "delivered" }],
    ["partial", false, { kind: "partial", retries: retry, dead: [], reason: "" }],
    ["failed", true, { ...failing, retries: retry }],
    ["failed, all dead", false, { ...failing, retries: [], dead: [entry(1)] }],
    ["failed by congestion the window answers", false, { ...failing, backoff: false }],
    ["gone", true, { kind: "gone", reason: "" }],
  ])("%s stops: %s", (_, expected, outcome) => {
    expect(stops(outcome)).toBe(expected);
  });
});

describe("the log line of a request not wholly accepted", () => {
  const endpoint = { channel: "orders", subscription: "billing" };
  const batch = [entry(1, 2), entry(2, 2)];
  it.each<[string, Outcome, string | null]>([
    ["delivered", { kind: "delivered" }, null],
    [
      "failed",
      {
        kind: "failed",
        retries: [{ at: 12_500, entries: batch }],
        dead: [],
        retryAt: 12_500,
        reason: "HTTP 500",
        congestion: false,
        backoff: true,
      },
      "webhook failed: orders/billing: HTTP 500, 2 messages, attempt 2; retry in 2.5 s",
    ],
    [
      "partial, one retried and one dead",
      {
        kind: "partial",
        retries: [{ at: 11_000, entries: [entry(1, 1)] }],
        dead: [entry(2, 3)],
        reason: REJECTED_REASON,
      },
      `webhook failed: orders/billing: ${REJECTED_REASON}, 2 messages, attempt 3; retry in 1.0 s; 1 message out of attempts, to the dead letters`,
    ],
    [
      "gone",
      { kind: "gone", reason: "HTTP 410: the endpoint is gone" },
      "webhook failed: orders/billing: HTTP 410: the endpoint is gone; the subscription is paused (2 messages kept)",
    ],
  ])("%s", (_, outcome, line) => {
    expect(failureLine(endpoint, outcome, batch, 10_000)).toBe(line);
  });
});
