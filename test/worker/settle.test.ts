import { describe, expect, it } from "vitest";
import { noCounts } from "../../worker/attempts.ts";
import type { UnitEntry } from "../../worker/entries.ts";
import type { Outcome } from "../../worker/judge.ts";
import {
  fold,
  foldAll,
  holdState,
  merge,
  noWrites,
  stateWrites,
  stops,
} from "../../worker/settle.ts";

const entry = (n: number, attempt = 1): UnitEntry => ({
  entryId: `100-${n}`,
  message: { id: `100-${n}`, type: null, data: "1", publishedAt: "1970-01-01T00:00:00.100Z" },
  attempt,
  bytes: 10,
});
const [a, b, c] = [entry(1), entry(2), entry(3)];

describe("folding outcomes into writes", () => {
  it.each<[string, Outcome[], Partial<ReturnType<typeof noWrites>>]>([
    ["filtered: acked, state untouched", [{ kind: "filtered", entries: [a] }], { ack: ["100-1"] }],
    [
      "delivered: acked, a success with the last id",
      [{ kind: "delivered", entries: [a, b], at: 5 }],
      {
        ack: ["100-1", "100-2"],
        state: {
          counts: noCounts(),
          success: { at: 5, lastAckedId: "100-2" },
          failuresSince: 0,
          error: null,
        },
      },
    ],
    [
      "rejected: kept for retry at the earliest time, the reason recorded",
      [{ kind: "rejected", retry: [a], dead: [], retryAt: 50, reason: "no", at: 6 }],
      {
        retryAt: 50,
        state: {
          counts: noCounts(),
          success: null,
          failuresSince: 0,
          error: { at: 6, error: "no" },
        },
      },
    ],
    [
      "rejected out of attempts: dead-lettered with its attempts",
      [{ kind: "rejected", retry: [], dead: [entry(3, 4)], retryAt: null, reason: "no", at: 6 }],
      {
        dead: [{ entryId: "100-3", attempts: 4, error: "no" }],
        retryAt: null,
        state: {
          counts: noCounts(),
          success: null,
          failuresSince: 0,
          error: { at: 6, error: "no" },
        },
      },
    ],
    [
      "failed: a failed request counted, nothing acked",
      [{ kind: "failed", retry: [a], dead: [], retryAt: 90, reason: "HTTP 500", at: 7 }],
      {
        ack: [],
        state: {
          counts: noCounts(),
          success: null,
          failuresSince: 1,
          error: { at: 7, error: "HTTP 500" },
        },
      },
    ],
    [
      "a success after failures resets the count",
      [
        { kind: "failed", retry: [a], dead: [], retryAt: 90, reason: "HTTP 500", at: 7 },
        { kind: "delivered", entries: [b], at: 8 },
      ],
      {
        ack: ["100-2"],
        state: {
          counts: noCounts(),
          success: { at: 8, lastAckedId: "100-2" },
          failuresSince: 0,
          error: { at: 7, error: "HTTP 500" },
        },
      },
    ],
    [
      "gone: a failed request, and the pause in the error",
      [{ kind: "gone", entries: [a], reason: "HTTP 410: the endpoint is gone", at: 9 }],
      {
        ack: [],
        state: {
          counts: noCounts(),
          success: null,
          failuresSince: 1,
          error: { at: 9, error: "HTTP 410: the endpoint is gone; subscription paused" },
        },
      },
    ],
  ])("%s", (_, outcomes, expected) => {
    expect(foldAll(noWrites(), outcomes, "main")).toEqual({ ...noWrites(), ...expected });
  });

  it("keeps the earliest retry time of several rejections", () => {
    const rejected = (retryAt: number): Outcome => ({
      kind: "rejected",
      retry: [c],
      dead: [],
      retryAt,
      reason: "no",
      at: 1,
    });
    expect(foldAll(noWrites(), [rejected(80), rejected(30), rejected(60)], "main").retryAt).toBe(
      30,
    );
  });

  it("never records a redrive stream's entry id as the last acked one", () => {
    const w = fold(noWrites(), { kind: "delivered", entries: [a], at: 5 }, "redrive");
    expect(w.state.success).toEqual({ at: 5, lastAckedId: null });
    expect(stateWrites(w.state, (f) => f).set).not.toHaveProperty("lastAckedId");
  });
});

describe("merging writes", () => {
  it("adds failures when no success came between, and starts over after one", () => {
    const failed = fold(
      noWrites(),
      {
        kind: "failed",
        retry: [a],
        dead: [],
        retryAt: 9,
        reason: "x",
        at: 1,
      },
      "main",
    );
    expect(merge(failed, failed).state.failuresSince).toBe(2);
    const succeeded = fold(noWrites(), { kind: "delivered", entries: [b], at: 2 }, "main");
    expect(merge(failed, succeeded).state.failuresSince).toBe(0);
    expect(merge(succeeded, failed).state).toMatchObject({
      counts: noCounts(),
      success: { at: 2 },
      failuresSince: 1,
    });
  });

  it("holds the state back and writes the rest", () => {
    const w = fold(noWrites(), { kind: "delivered", entries: [a], at: 5 }, "main");
    const [writing, state] = holdState(w);
    expect(writing.ack).toEqual(["100-1"]);
    expect(writing.state).toEqual(noWrites().state);
    expect(state.success?.at).toBe(5);
  });
});

describe("which outcomes stop a unit", () => {
  it.each<[Outcome, boolean]>([
    [{ kind: "delivered", entries: [a], at: 1 }, false],
    [{ kind: "rejected", retry: [a], dead: [], retryAt: 2, reason: "", at: 1 }, false],
    [{ kind: "failed", retry: [a], dead: [], retryAt: 2, reason: "", at: 1 }, true],
    [{ kind: "failed", retry: [], dead: [a], retryAt: 2, reason: "", at: 1 }, false],
    [{ kind: "gone", entries: [a], reason: "", at: 1 }, true],
  ])("%j stops: %s", (outcome, expected) => {
    expect(stops(outcome)).toBe(expected);
  });
});

describe("the state hash writes", () => {
  const field = (fact: string) => `s:${fact}`;
  it("sets the count after a success, and adds to it when none came", () => {
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
    expect(
      stateWrites(
        { counts: noCounts(), success: null, failuresSince: 2, error: { at: 4, error: "e" } },
        field,
      ),
    ).toEqual({ set: { "s:lastError": "e", "s:lastErrorAt": "4" }, increment: 2 });
  });
});
