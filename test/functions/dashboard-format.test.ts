// The dashboard's pure parts: how it writes values for people, and how the requests chart counts
// attempts into the hour's buckets (time passed in).

import { describe, expect, it } from "vitest";
import {
  type AttemptView,
  CHART_WINDOW_MS,
  type HourOfAttempts,
} from "../../functions/dashboard/attempts.ts";
import { bucketize } from "../../functions/dashboard/chart.tsx";
import {
  formatBytes,
  formatCount,
  formatDuration,
  formatRelative,
  formatRetention,
} from "../../functions/dashboard/format.ts";

describe("writing values for people", () => {
  it.each([
    [0, "0 B"],
    [1023, "1023 B"],
    [1024, "1.0 KiB"],
    [1536, "1.5 KiB"],
    [10 * 1024 + 400, "10 KiB"],
    [5 * 1024 ** 2, "5.0 MiB"],
    [100 * 1024 ** 3, "100 GiB"],
  ])("writes %i bytes as %s", (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  it.each([
    [250, "250 ms"],
    [1000, "1 s"],
    [90_000, "1.5 min"],
    [3_600_000, "1 h"],
    [604_800_000, "7 d"],
    [1_209_600_000, "14 d"],
  ])("writes %i ms as %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it.each([
    [-400, "now"],
    [-30_000, "30 s ago"],
    [-3 * 60_000, "3 min ago"],
    [45_000, "in 45 s"],
  ])("writes a time %i ms from now as %s", (offset, text) => {
    const now = Date.parse("2026-06-01T12:00:00Z");
    expect(formatRelative(new Date(now + offset).toISOString(), now)).toBe(text);
  });

  it.each([
    [{ maxAgeMs: 604_800_000, maxMessages: null }, "7 d"],
    [{ maxAgeMs: null, maxMessages: 1000 }, "1,000 messages"],
    [{ maxAgeMs: 3_600_000, maxMessages: 500 }, "1 h or 500 messages"],
    [{ maxAgeMs: null, maxMessages: null }, "none"],
  ])("writes retention %o as %s", (retention, text) => {
    expect(formatRetention(retention)).toBe(text);
  });

  it("groups thousands", () => {
    expect(formatCount(1_234_567)).toBe("1,234,567");
  });
});

describe("the requests chart", () => {
  const now = Date.parse("2026-06-01T12:00:00Z");
  const attempt = (minutesAgo: number, error: string | null): AttemptView => ({
    id: `${now - minutesAgo * 60_000}-0`,
    at: new Date(now - minutesAgo * 60_000).toISOString(),
    attempt: 1,
    messages: 3,
    firstId: "1-0",
    lastId: "1-2",
    status: error === null ? 204 : 503,
    durationMs: 40,
    error,
    body: "",
    traceparent: null,
    held: [],
  });
  const log = (...attempts: AttemptView[]): HourOfAttempts => ({
    name: "sub",
    attempts,
    since: null,
  });

  it("counts requests into twelve 5-minute buckets, delivered when there is no error", () => {
    const buckets = bucketize(
      [
        log(attempt(1, null), attempt(2, "HTTP 503"), attempt(7, "HTTP 500"), attempt(58, null)),
        log(attempt(3, null)),
      ],
      now,
    );
    expect(buckets).toHaveLength(12);
    expect(buckets[0]).toEqual({ start: now - CHART_WINDOW_MS, delivered: 1, failed: 0 });
    expect(buckets[10]).toEqual({ start: now - 600_000, delivered: 0, failed: 1 });
    expect(buckets[11]).toEqual({ start: now - 300_000, delivered: 2, failed: 1 });
    expect(buckets.slice(1, 10).every((b) => b.delivered + b.failed === 0)).toBe(true);
  });

  it("leaves out requests older than the hour", () => {
    const buckets = bucketize([log(attempt(61, null), attempt(0, "timeout"))], now);
    expect(buckets.reduce((sum, b) => sum + b.delivered, 0)).toBe(0);
    expect(buckets.reduce((sum, b) => sum + b.failed, 0)).toBe(1);
  });
});
