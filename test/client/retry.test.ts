// The client's retry timing, pure: Retry-After as the API (and proxies) send it, and the backoff
// used when an answer has none.

import { parseRetryAfter } from "@streamhook/client";
import { describe, expect, it } from "vitest";
import { backoffMs } from "../../client/retry.ts";

const NOW = Date.parse("2026-11-24T08:00:00Z");

describe("parseRetryAfter", () => {
  it.each<[string | null, number | null]>([
    ["1", 1000],
    ["0", 0],
    [" 30 ", 30_000],
    ["Tue, 24 Nov 2026 08:00:05 GMT", 5000],
    ["Tue, 24 Nov 2026 07:59:00 GMT", 0],
    [null, null],
    ["", null],
    ["-1", null],
    ["1.5", null],
    ["soon", null],
  ])("reads %j as %j ms", (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });
});

describe("backoffMs", () => {
  it.each([
    // retry, base, max, random -> ms
    [1, 500, 30_000, 0, 250],
    [1, 500, 30_000, 1, 500],
    [2, 500, 30_000, 1, 1000],
    [3, 500, 30_000, 0.5, 1500],
    [10, 500, 30_000, 1, 30_000],
    [60, 500, 30_000, 0, 15_000],
  ])("retry %i (base %i, max %i, random %d) waits %i ms", (retry, base, max, random, expected) => {
    expect(backoffMs(retry, base, max, random)).toBe(expected);
  });
});
