import { describe, expect, it } from "vitest";
import type { Taken } from "../../shared/engine/take.ts";
import { attemptOf, countAttempts, counterIncrements, noCounts } from "../../worker/attempts.ts";
import type { Answer } from "../../worker/deliver.ts";

// Published at ms 1000, 1001, 1002 (a message id is its publish time).
const entry = (n: number, attempt = 1): Taken => ({
  entryId: `100${n}-0`,
  messageId: `100${n}-0`,
  attempt,
  text: `{"id":"100${n}-0","type":null,"data":1,"publishedAt":"1970-01-01T00:00:01.00${n}Z","attempt":${attempt}}`,
  bytes: 1,
  trace: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" },
  orderingKey: null,
});
const batch = [entry(0), entry(1, 2), entry(2)];
const accepted = (failed: string[] = []): Answer => ({
  ok: true,
  failedIds: new Set(failed),
  answer: 200,
  body: "ok",
});
const refused: Answer = {
  ok: false,
  status: 503,
  reason: "HTTP 503",
  retryAfterMs: null,
  answer: 503,
  body: "busy",
};

describe("what a request leaves behind", () => {
  it("records its messages, answer and time, and the latency of each message it delivered", () => {
    const trace = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" };
    expect(attemptOf(batch, accepted(["1001-0"]), 1500, 20, trace)).toEqual({
      record: {
        at: 1500,
        attempt: 2,
        messages: 3,
        firstId: "1000-0",
        lastId: "1002-0",
        status: 200,
        durationMs: 20,
        error: null,
        body: "ok",
        traceparent: trace.traceparent,
        held: [],
      },
      result: "success",
      // Answered at 1520: publish to 2xx, for those not listed in failed.
      latenciesMs: [520, 518],
    });
  });

  it("names a redriven message by its message id, and times it from its first publish", () => {
    // Redriven at 1400: its entry id is the redrive stream's, its message id the original's.
    const redriven = { ...entry(0), entryId: "1400-0" };
    expect(attemptOf([redriven], accepted(), 1500, 20)).toMatchObject({
      record: { firstId: "1000-0", lastId: "1000-0" },
      latenciesMs: [520],
    });
  });

  it("records a refusal with its reason and no latency", () => {
    expect(attemptOf(batch, refused, 1500, 7)).toMatchObject({
      record: { status: 503, error: "HTTP 503", body: "busy", durationMs: 7 },
      result: "http_5xx",
      latenciesMs: [],
    });
  });
});

describe("counting requests", () => {
  it("adds requests by result and delivered messages by bucket; writes only what moved", () => {
    const counts = countAttempts(noCounts(), [
      attemptOf(batch, accepted(), 1000, 5),
      attemptOf(batch, refused, 2000, 5),
      attemptOf([entry(0)], accepted(), 3000, 0),
    ]);
    expect(counts).toEqual({
      attempts: { success: 2, http_5xx: 1 },
      // 5, 4 and 3 ms (<= 10 ms: bucket 0); then 2000 ms (<= 2.5 s: bucket 7).
      latency: { 0: 3, 7: 1 },
      latencyMs: 2012,
    });
    expect(counterIncrements(counts, (c) => `s:${c}`)).toEqual([
      "s:attempts:success",
      "2",
      "s:attempts:http_5xx",
      "1",
      "s:latency:0.01",
      "3",
      "s:latency:2.5",
      "1",
      "s:latencyMs",
      "2012",
    ]);
    expect(counterIncrements(noCounts(), (c) => c)).toEqual([]);
  });
});
