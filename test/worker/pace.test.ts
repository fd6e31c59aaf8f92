import { describe, expect, it } from "vitest";
import { nextStartAt, Pacer, paceKey } from "../../worker/pace.ts";

describe("when a paced POST may start", () => {
  it.each([
    // last start, maxRequestsPerSecond, now, may start at
    [null, null, 1_000, 1_000],
    [900, null, 1_000, 1_000],
    [null, 5, 1_000, 1_000],
    [900, 5, 1_000, 1_100],
    [800, 5, 1_000, 1_000],
    [500, 5, 1_000, 1_000],
    [900, 1, 1_000, 1_900],
    [1_000, 3, 1_000, 1_000 + 1000 / 3],
    [1_000, 10_000, 1_000, 1_000.1],
  ])("after a start at %j, at %j per second, at %j: %j", (last, rps, now, expected) => {
    expect(nextStartAt(last, rps, now)).toBe(expected);
  });
});

describe("the isolate's pacer", () => {
  const sub = { channel: "c", group: "s~aaaa" };

  it("remembers a subscription's last start across visits", () => {
    const pace = new Pacer();
    pace.started(paceKey(sub), 5, 1_000);
    expect(pace.nextStart(paceKey(sub), 5, 1_050)).toBe(1_200);
  });

  it("starts afresh for a new subscription under the same name (a new group)", () => {
    const pace = new Pacer();
    pace.started(paceKey(sub), 5, 1_000);
    expect(pace.nextStart(paceKey({ ...sub, group: "s~bbbb" }), 5, 1_050)).toBe(1_050);
  });

  it("holds nothing back once the limit is lifted", () => {
    const pace = new Pacer();
    pace.started(paceKey(sub), 5, 1_000);
    pace.started(paceKey(sub), null, 1_010);
    expect(pace.nextStart(paceKey(sub), 5, 1_020)).toBe(1_020);
  });
});
