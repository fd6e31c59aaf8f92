import { describe, expect, it } from "vitest";
import type { AttemptResult } from "../../worker/deliver.ts";
import type { UnitEntry } from "../../worker/entries.ts";
import { judge, REJECTED_REASON } from "../../worker/judge.ts";
import { retryDelayMs } from "../../worker/retry.ts";

const policy = { retryBaseMs: 1000, retryMaxMs: 60_000 };
const options = { now: 10_000, maxAttempts: 3, jitterKey: "sub", policy };
const entry = (n: number, attempt = 1): UnitEntry => ({
  entryId: `100-${n}`,
  message: { id: `100-${n}`, type: null, data: "1", publishedAt: "1970-01-01T00:00:00.100Z" },
  attempt,
  bytes: 10,
});
const ok = (failed: string[] = []): AttemptResult => ({
  ok: true,
  failedIds: new Set(failed),
  answer: 200,
  body: "",
});
const failed = (
  status: number | null,
  retryAfterMs: number | null = null,
  body = "",
): AttemptResult => ({
  ok: false,
  status,
  reason: status === null ? "timeout after 1 ms" : `HTTP ${status}`,
  retryAfterMs,
  answer: status ?? "timeout",
  body,
});
const due = (attempt: number) => options.now + retryDelayMs(attempt, "sub", policy);

describe("judging an attempt", () => {
  it("counts a 2xx as delivered for every message", () => {
    expect(judge(ok(), [entry(1), entry(2)], options)).toEqual([
      { kind: "delivered", entries: [entry(1), entry(2)], at: 10_000 },
    ]);
  });

  it("keeps the ids a 2xx lists in failed for a retry, and delivers the rest", () => {
    expect(judge(ok(["100-2"]), [entry(1), entry(2)], options)).toEqual([
      { kind: "delivered", entries: [entry(1)], at: 10_000 },
      {
        kind: "rejected",
        retry: [entry(2)],
        dead: [],
        retryAt: due(1),
        reason: REJECTED_REASON,
        at: 10_000,
      },
    ]);
  });

  it("dead-letters a rejected message that used its last attempt", () => {
    const [, rejected] = judge(ok(["100-2"]), [entry(1), entry(2, 3)], options);
    expect(rejected).toMatchObject({
      kind: "rejected",
      retry: [],
      dead: [entry(2, 3)],
      retryAt: null,
    });
  });

  it.each<[number | null]>([[500], [303], [404], [null]])(
    "fails the whole batch on status %s, backing off by the schedule",
    (status) => {
      expect(judge(failed(status), [entry(1), entry(2)], options)).toEqual([
        {
          kind: "failed",
          retry: [entry(1), entry(2)],
          dead: [],
          retryAt: due(1),
          reason: status === null ? "timeout after 1 ms" : `HTTP ${status}`,
          at: 10_000,
        },
      ]);
    },
  );

  it.each([429, 503])("waits as long as a %i's Retry-After asks when that is longer", (status) => {
    const [outcome] = judge(failed(status, 20_000), [entry(1)], options);
    expect(outcome).toMatchObject({ kind: "failed", retryAt: options.now + 20_000 });
  });

  it("never waits less than its own schedule, whatever Retry-After says", () => {
    const [outcome] = judge(failed(429, 1), [entry(1)], options);
    expect(outcome).toMatchObject({ retryAt: due(1) });
  });

  it("caps Retry-After at RETRY_MAX_MS", () => {
    const [outcome] = judge(failed(503, 10 * 60_000), [entry(1)], options);
    expect(outcome).toMatchObject({ retryAt: options.now + policy.retryMaxMs });
  });

  it("treats 410 as gone: nothing acked, nothing dead-lettered", () => {
    expect(judge(failed(410), [entry(1, 3)], options)).toEqual([
      {
        kind: "gone",
        entries: [entry(1, 3)],
        reason: "HTTP 410: the endpoint is gone",
        at: 10_000,
      },
    ]);
  });

  it("keeps the first KiB of a failed answer's body in the reason (lastError), after the status", () => {
    expect(judge(failed(503, null, '{"error":"db down"}'), [entry(1)], options)).toMatchObject([
      { kind: "failed", reason: 'HTTP 503; response: {"error":"db down"}' },
    ]);
    expect(judge(failed(410, null, "bye"), [entry(1)], options)).toMatchObject([
      { kind: "gone", reason: "HTTP 410: the endpoint is gone; response: bye" },
    ]);
  });

  it("dead-letters what used its last attempt when the request fails, and retries the rest", () => {
    const [outcome] = judge(failed(500), [entry(1, 3), entry(2, 1)], options);
    expect(outcome).toMatchObject({ kind: "failed", retry: [entry(2, 1)], dead: [entry(1, 3)] });
  });
});
