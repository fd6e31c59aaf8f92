// The times a schedule runs at (shared/cron.ts over croner): fixed vectors, DST included, and
// what it refuses. New York's clocks skip 02:00-03:00 on 2027-03-14 and repeat 01:00-02:00 on
// 2027-11-07.

import { describe, expect, it } from "vitest";
import { cronProblem, latestRun, nextRun, timezoneProblem } from "../../shared/cron.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const NY = "America/New_York";

/** The first `n` runs after `from`, each found from the one before. */
function runsAfter(cron: string, timezone: string, from: string, n: number): (string | null)[] {
  const out: (string | null)[] = [];
  let t = at(from);
  for (let i = 0; i < n; i++) {
    const next = nextRun({ cron, timezone }, t);
    out.push(iso(next));
    if (next === null) break;
    t = next;
  }
  return out;
}

describe("the next run", () => {
  it.each([
    ["* * * * *", "UTC", "2027-01-05T10:05:00.000Z", "2027-01-05T10:06:00.000Z"],
    ["* * * * *", "UTC", "2027-01-05T10:05:59.999Z", "2027-01-05T10:06:00.000Z"],
    ["0 9 * * 1-5", NY, "2027-01-08T15:00:00.000Z", "2027-01-11T14:00:00.000Z"], // Fri -> Mon
    ["0 9 * * 1-5", NY, "2027-07-08T12:00:00.000Z", "2027-07-08T13:00:00.000Z"], // EDT: UTC-4
    ["@daily", "UTC", "2027-01-05T10:05:00.000Z", "2027-01-06T00:00:00.000Z"],
    ["0 0 L * *", "UTC", "2027-02-03T00:00:00.000Z", "2027-02-28T00:00:00.000Z"],
  ])("%s in %s after %s is %s (strictly after)", (cron, timezone, from, expected) => {
    expect(iso(nextRun({ cron, timezone }, at(from)))).toBe(expected);
  });
});

describe("the latest run at or before a time", () => {
  it.each([
    ["* * * * *", "UTC", "2027-01-05T10:05:00.000Z", "2027-01-05T10:05:00.000Z"],
    ["* * * * *", "UTC", "2027-01-05T10:05:59.999Z", "2027-01-05T10:05:00.000Z"],
    ["0 * * * *", "UTC", "2027-01-05T10:05:00.000Z", "2027-01-05T10:00:00.000Z"],
    // A year without runs costs croner the same walk back.
    ["0 0 1 1 *", "UTC", "2027-12-31T23:59:00.000Z", "2027-01-01T00:00:00.000Z"],
    ["30 2 * * *", NY, "2027-03-14T08:00:00.000Z", "2027-03-14T07:00:00.000Z"],
  ])("%s in %s at %s is %s", (cron, timezone, time, expected) => {
    expect(iso(latestRun({ cron, timezone }, at(time)))).toBe(expected);
  });
});

describe("daylight saving time, as croner documents it", () => {
  it("runs a fixed time the spring gap skips at the first time after the gap, that day", () => {
    // 02:30 does not exist on March 14: 03:00 EDT (07:00Z) instead, then 02:30 EDT again.
    expect(runsAfter("30 2 * * *", NY, "2027-03-12T12:00:00Z", 4)).toEqual([
      "2027-03-13T07:30:00.000Z",
      "2027-03-14T07:00:00.000Z",
      "2027-03-15T06:30:00.000Z",
      "2027-03-16T06:30:00.000Z",
    ]);
  });

  it("runs a fixed time the autumn repeats once, at its first occurrence", () => {
    // 01:30 happens twice on November 7 (EDT 05:30Z, then EST 06:30Z): only the first runs.
    expect(runsAfter("30 1 * * *", NY, "2027-11-05T12:00:00Z", 3)).toEqual([
      "2027-11-06T05:30:00.000Z",
      "2027-11-07T05:30:00.000Z",
      "2027-11-08T06:30:00.000Z",
    ]);
  });

  it("skips an interval's times in the gap, and runs both occurrences of a repeated hour", () => {
    expect(runsAfter("*/30 * * * *", NY, "2027-03-14T06:20:00Z", 3)).toEqual([
      "2027-03-14T06:30:00.000Z", // 01:30 EST
      "2027-03-14T07:00:00.000Z", // 03:00 EDT: 02:00 and 02:30 do not exist
      "2027-03-14T07:30:00.000Z",
    ]);
    expect(runsAfter("*/30 * * * *", NY, "2027-11-07T04:50:00Z", 4)).toEqual([
      "2027-11-07T05:00:00.000Z", // 01:00 EDT
      "2027-11-07T05:30:00.000Z", // 01:30 EDT
      "2027-11-07T06:00:00.000Z", // 01:00 EST
      "2027-11-07T06:30:00.000Z", // 01:30 EST
    ]);
  });
});

describe("what a schedule refuses", () => {
  const now = at("2027-01-05T10:05:00Z");

  it.each(["* * * * *", "0 9 * * 1-5", "*/15 8-18 * * MON-FRI", "@hourly", "0 0 1 1 *"])(
    "takes %s",
    (cron) => expect(cronProblem(cron, now)).toBeNull(),
  );

  it.each([
    ["* * * *", /5-field/],
    ["0 * * * * *", /5-field.*6 parts/],
    ["61 * * * *", /minute/],
    ["*/0 * * * *", /5-field/],
    ["", /5-field/],
    ["0 0 30 2 *", /never/],
  ])("refuses %j", (cron, reason) => {
    expect(cronProblem(cron, now)).toMatch(reason);
  });

  it.each(["UTC", "America/New_York", "Europe/Paris", "Etc/GMT+5", "america/new_york"])(
    "takes the time zone %s",
    (timezone) => expect(timezoneProblem(timezone)).toBeNull(),
  );

  it.each(["Mars/Olympus", "+02:00", "", "UTC+2", " UTC", "America/New_York/x"])(
    "refuses the time zone %j",
    (timezone) => expect(timezoneProblem(timezone)).toMatch(/IANA time zone/),
  );
});
