import { describe, expect, it } from "vitest";
import { type End, scheduleFor } from "../../worker/end.ts";
import type { WorkUnit } from "../../worker/entries.ts";
import type { ScheduleChange } from "../../worker/store.ts";

const unit: WorkUnit = {
  channel: "orders",
  subscription: "billing",
  kind: "main",
  group: "billing~x",
  stream: "sh:v1:ch:orders",
};
const now = 1_000;
const base = 300;

describe("the schedule of a unit that stops", () => {
  it.each([
    [
      "idle: what the retry step decided",
      { kind: "idle", schedule: [{ how: "rem", member: "retry:orders/billing" }] },
      0,
      [{ how: "rem", member: "retry:orders/billing" }],
    ],
    [
      "full: nothing new read for one base delay",
      { kind: "full" },
      0,
      [{ how: "set", member: "wake:orders/billing", at: now + base }],
    ],
    [
      "budget: to the back of the queue",
      { kind: "budget" },
      0,
      [{ how: "xx", member: "wake:orders/billing", at: now }],
    ],
    [
      "budget in the retry step: the retries still due are due now",
      { kind: "budget", retryNow: true },
      0,
      [
        { how: "xx", member: "wake:orders/billing", at: now },
        { how: "set", member: "retry:orders/billing", at: now },
      ],
    ],
    [
      "backoff: neither read nor retried before the time",
      { kind: "backoff", at: 9_000 },
      0,
      [
        { how: "set", member: "wake:orders/billing", at: 9_000 },
        { how: "set", member: "retry:orders/billing", at: 9_000 },
      ],
    ],
    [
      "gone: nothing scheduled for either unit",
      { kind: "gone" },
      0,
      [
        { how: "rem", member: "wake:orders/billing" },
        { how: "rem", member: "retry:orders/billing" },
        { how: "rem", member: "wake:orders/billing/redrive" },
        { how: "rem", member: "retry:orders/billing/redrive" },
      ],
    ],
    [
      "entries read but not sent get a retry member, their only schedule",
      { kind: "budget" },
      3,
      [
        { how: "xx", member: "wake:orders/billing", at: now },
        { how: "lt", member: "retry:orders/billing", at: now },
      ],
    ],
  ] as [string, End, number, ScheduleChange[]][])("%s", (_, end, unsent, expected) => {
    expect(scheduleFor(end, unit, now, { retryBaseMs: base, graceMs: 0 }, unsent)).toEqual(
      expected,
    );
  });
});
