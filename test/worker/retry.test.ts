import { describe, expect, it } from "vitest";
import { nextAttemptAt, parseRetryAfter, retryDelayMs, unitHash } from "../../worker/retry.ts";

const defaults = { retryBaseMs: 30_000, retryMaxMs: 6 * 3_600_000 };

describe("the retry schedule", () => {
  it.each([
    [1, 30_000],
    [2, 60_000],
    [3, 120_000],
    [5, 480_000],
    [10, 15_360_000],
  ])("waits about base * 2^(attempt-1) after attempt %i (+-20%)", (attempt, expected) => {
    for (const key of ["a", "billing", "orders-sync"]) {
      const delay = retryDelayMs(attempt, key, defaults);
      expect(delay).toBeGreaterThanOrEqual(expected * 0.8);
      expect(delay).toBeLessThan(expected * 1.2);
    }
  });

  it("never waits longer than the cap", () => {
    for (let attempt = 11; attempt <= 100; attempt++) {
      expect(retryDelayMs(attempt, "k", defaults)).toBeLessThanOrEqual(defaults.retryMaxMs);
    }
  });

  it("spans about a day and a half over the default 15 attempts", () => {
    let total = 0;
    for (let attempt = 1; attempt < 15; attempt++) total += retryDelayMs(attempt, "k", defaults);
    expect(total / 3_600_000).toBeGreaterThan(28);
    expect(total / 3_600_000).toBeLessThan(38);
  });

  it("gives the same delay every time it is asked (the worker asks at every pass)", () => {
    expect(retryDelayMs(4, "billing", defaults)).toBe(retryDelayMs(4, "billing", defaults));
  });

  it("spreads subscribers apart (jitter keyed by subscription)", () => {
    const delays = new Set(["a", "b", "c", "d", "e"].map((k) => retryDelayMs(3, k, defaults)));
    expect(delays.size).toBe(5);
  });

  it("hashes into [0, 1)", () => {
    for (const text of ["", "a", "x".repeat(1000)]) {
      expect(unitHash(text)).toBeGreaterThanOrEqual(0);
      expect(unitHash(text)).toBeLessThan(1);
    }
  });
});

describe("Retry-After", () => {
  const now = Date.parse("2026-11-24T10:00:00Z");
  it.each([
    ["120", 120_000],
    ["0", 0],
    [" 5 ", 5_000],
    ["Tue, 24 Nov 2026 10:01:00 GMT", 60_000],
    ["Tue, 24 Nov 2026 09:00:00 GMT", 0],
    ["soon", null],
    ["-5", null],
    ["1.5", null],
  ])("reads %j as %j ms", (header, expected) => {
    expect(parseRetryAfter(header, now)).toBe(expected);
  });

  it("is absent when the header is", () => {
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it("is honoured when longer than the backoff, never shorter, never past the cap", () => {
    const policy = { retryBaseMs: 1_000, retryMaxMs: 60_000 };
    const backoff = retryDelayMs(1, "k", policy);
    expect(nextAttemptAt(now, 1, "k", policy, 10)).toBe(now + backoff);
    expect(nextAttemptAt(now, 1, "k", policy, 30_000)).toBe(now + 30_000);
    expect(nextAttemptAt(now, 1, "k", policy, 3_600_000)).toBe(now + 60_000);
  });
});
