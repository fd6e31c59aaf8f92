import { describe, expect, it } from "vitest";
import type { Signals, Window } from "../../shared/engine/take.ts";
import { grown, tell } from "../../worker/window.ts";

const slow = (size: number): Window => ({ size, cutAt: 0 });
const cut = (size: number): Window => ({ size, cutAt: 500 });
const ok = (succeeded: number): Signals => ({ succeeded, congestedAt: 0 });

describe("a run's copy of the window", () => {
  it.each<[string, Window, number, number, number]>([
    ["slow start: one per success", slow(2), 3, 25, 5],
    ["additive after a cut: one per window's worth", cut(4), 2, 25, 4.5],
    ["never past maxConcurrency", slow(20), 10, 25, 25],
  ])("grows: %s", (_, window, succeeded, max, size) => {
    expect(grown(window, succeeded, max)).toEqual({ ...window, size });
  });
});

describe("what a take tells the window", () => {
  it.each<[string, Window | null, Signals, boolean, "all" | Window]>([
    ["the run's first take: everything (it reads the window)", null, ok(3), false, "all"],
    ["successes that do not double it: kept, the copy grown", slow(4), ok(3), false, slow(7)],
    ["successes that double it: everything", slow(4), ok(4), false, "all"],
    ["successes that reach maxConcurrency: everything", slow(8), ok(2), false, "all"],
    ["after a cut, within its whole part: kept", cut(4), ok(3), false, cut(4.75)],
    ["after a cut, past its whole part: everything", cut(4), ok(4), false, "all"],
    ["congestion: at once", slow(4), { succeeded: 1, congestedAt: 900 }, false, "all"],
    ["the run's last round: what it kept", slow(4), ok(1), true, "all"],
    ["nothing to tell: the window as read", slow(4), ok(0), false, "all"],
  ])("%s", (_, known, signals, final, expected) => {
    const told = tell(known, signals, 10, final);
    if (expected === "all") {
      expect(told).toEqual({ carried: signals, kept: ok(0), known, stored: true });
    } else {
      expect(told).toEqual({ carried: ok(0), kept: signals, known: expected, stored: false });
    }
  });
});

describe("what a run alone on the subscription tells the window", () => {
  it.each<[string, Window, Signals, boolean, "all" | Window]>([
    ["successes that double it: kept, the copy grown", slow(4), ok(4), false, slow(8)],
    ["past its whole part after a cut: kept", cut(4), ok(4), false, cut(5)],
    ["successes that reach maxConcurrency: everything", slow(8), ok(2), false, "all"],
    ["congestion: at once", slow(4), { succeeded: 1, congestedAt: 900 }, false, "all"],
    ["the run's last round: what it kept", slow(4), ok(5), true, "all"],
  ])("%s", (_, known, signals, final, expected) => {
    const told = tell(known, signals, 10, final, true);
    if (expected === "all") {
      expect(told).toEqual({ carried: signals, kept: ok(0), known, stored: true });
    } else {
      expect(told).toEqual({ carried: ok(0), kept: signals, known: expected, stored: false });
    }
  });
});
