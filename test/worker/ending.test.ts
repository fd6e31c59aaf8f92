import { describe, expect, it } from "vitest";
import { type End, nextVisit, wakeAfter } from "../../worker/ending.ts";

// How a deliverer run's end moves its unit's wake member, and when it wants its next visit: pure,
// with the time passed in.
const NOW = 1_000_000;
const BASE = 30_000;
const backoff = { kind: "backoff" as const, at: NOW + 60_000 };

describe("the wake member after a run", () => {
  it.each<[End, ReturnType<typeof wakeAfter>]>([
    // Nothing new is read before the backoff ends; a wake already later stays later.
    ["backoff", { how: "gt", at: NOW + 60_000 }],
    // The pending list is full: retries must make room first, for one base delay.
    ["full", { how: "set", at: NOW + BASE }],
    // Still due, at the back of the schedule, only while it is there (a delete removed it).
    ["budget", { how: "xx", at: NOW }],
    ["error", { how: "xx", at: NOW }],
    // Paused (410): nothing scheduled until resumed.
    ["gone", { how: "unschedule" }],
    // As the last take left it.
    ["idle", null],
    ["busy", null],
    ["lost", null],
  ])("%s: %o", (end, change) => {
    const stop = end === "backoff" ? backoff : end === "gone" ? { kind: "gone" as const } : null;
    expect(wakeAfter(end, stop, NOW, BASE)).toEqual(change);
  });

  it("holds a backoff that has no time of its own until now, never earlier", () => {
    expect(wakeAfter("backoff", null, NOW, BASE)).toEqual({ how: "gt", at: NOW });
  });
});

describe("the next visit a run asks for", () => {
  it.each<[string, End, typeof backoff | null, number | null, number | null]>([
    ["at once to carry on after the budget", "budget", null, NOW + 5_000, NOW],
    ["one base delay after an error", "error", null, null, NOW + BASE],
    ["one base delay after a full pending list", "full", null, null, NOW + BASE],
    ["when the backoff ends", "backoff", backoff, NOW + 90_000, NOW + 60_000],
    ["when an entry the run gave back is due, if sooner", "backoff", backoff, NOW + 1, NOW + 1],
    [
      "when the first entry the run made visible again is due",
      "idle",
      null,
      NOW + 7_000,
      NOW + 7_000,
    ],
    ["nothing when the run made nothing visible again", "idle", null, null, null],
    ["nothing for a paused subscription", "gone", null, NOW + 7_000, null],
    ["nothing for a lost group", "lost", null, NOW + 7_000, null],
  ])("%s", (_what, end, stop, retryAt, expected) => {
    expect(nextVisit(end, stop, NOW, retryAt, BASE)).toBe(expected);
  });
});
