// Issue 21's cost targets and the report's cost table (bench/cost-report.ts), on fixed figures:
// each case breaks one figure of a valid run and expects exactly its target to be missed.

import { describe, expect, it } from "vitest";
import { check } from "../../bench/check.ts";
import { markdown, targets } from "../../bench/report.ts";
import type { Results } from "../../bench/results.ts";
import type { DeliveryRow } from "../../bench/scenarios/delivery.ts";
import type { LoneMessageResult } from "../../bench/scenarios/lone-message.ts";
import type { SteadyStreamResult } from "../../bench/scenarios/steady-stream.ts";

const startedAt = "2026-12-07T00:00:00.000Z";

// Valid: every figure within its target.
const lone: LoneMessageResult = {
  messages: 100,
  intervalMs: 50,
  delivered: 100,
  requests: 100,
  missing: 0,
  p50Ms: 15,
  p99Ms: 60,
  maxMs: 90,
  commandsPerMessage: 4.5,
  byCommand: { evalsha: 200, xadd: 100, "xgroup|delconsumer": 100, hincrby: 50 },
  queueOpsPerMessage: 0.5,
};
const steady: SteadyStreamResult = {
  ratePerSecond: 500,
  perPublish: 10,
  subscriptions: 10,
  batchSize: 100,
  seconds: 20,
  published: 10_000,
  delivered: 100_000,
  missing: 0,
  p50Ms: 40,
  p99Ms: 200,
  maxMs: 300,
  latePublishes: 0,
  commandsPerDelivery: 0.08,
  queueOpsPerDelivery: 0.001,
};
const backlog = (subscriptions: number, batchSize: number, commandsPerMessage: number) =>
  ({
    subscriptions,
    batchSize,
    backlog: 1000,
    delivered: subscriptions * 1000,
    perSecond: 50_000,
    reference: 50_000,
    vsReference: 1,
    passes: 10,
    rounds: 1,
    commandsPerMessage,
    restRequestsPerMessage: 0.01,
  }) satisfies DeliveryRow;
const cost = {
  publishCommands: 2,
  batchPublishCommands: 102,
  batchSize: 100,
  idlePass: [
    { subscriptions: 0, commands: 1 },
    { subscriptions: 100, commands: 1 },
    { subscriptions: 1000, commands: 1 },
  ],
};

const LONE =
  "A lone message, publish to receipt, one subscriber: <= 5 commands and <= $10 per million (QStash)";
const STEADY =
  "A steady stream, 500 msg/s in publishes of 10 to 10 subscribers at batchSize 100 for 20 s: <= 0.1 commands per delivery, publish included";
const BACKLOG_100 =
  "A backlog at batch 100: <= 0.02 commands per message (the delivery table, the worst of 1 and 10 subscriptions)";
const BACKLOG_1 =
  "A backlog at batch 1: <= 1.5 commands per message (the delivery table, the worst of 1 and 10 subscriptions)";
const IDLE = "Idle pass over 1,000 subscriptions = 1 command";
const PUBLISH = "Single publish <= 2 commands in all, kick included (no subscriptions)";

const judged = (r: Omit<Results, "startedAt">) =>
  Object.fromEntries(targets({ startedAt, ...r }).map((t) => [t.target, t.met]));

describe("the lone message: <= 5 commands and <= QStash's $10 per million, every message received", () => {
  it.each([
    ["met: 4.5 commands + 0.5 queue ops ($9.20)", {}, true],
    [
      "met: exactly 5 commands and no queue op ($10)",
      { commandsPerMessage: 5, queueOpsPerMessage: 0 },
      true,
    ],
    ["missed: 5.01 commands", { commandsPerMessage: 5.01, queueOpsPerMessage: 0 }, false],
    [
      "missed: 5 commands and 1 queue op ($10.0004)",
      { commandsPerMessage: 5, queueOpsPerMessage: 1 },
      false,
    ],
    ["missed: one message not received", { delivered: 99, missing: 1 }, false],
  ])("%s", (_case, changes, met) => {
    expect(judged({ loneMessage: { ...lone, ...changes } })).toEqual({ [LONE]: met });
  });

  it("says what the commands and the queue operations cost apart", () => {
    const [target] = targets({ startedAt, loneMessage: lone });
    expect(target?.measured).toBe(
      "4.5 commands + 0.5 queue ops per message = $9.2 per million (Upstash $9 + Queues $0.2); 100 of 100 received, missing 0",
    );
  });

  it("breaks one message's commands down by name, dearest first, and says if any went together", () => {
    const md = markdown({ startedAt, loneMessage: { ...lone, requests: 97 } });
    expect(md).toContain("100 of 100 received in 97 requests, missing 0");
    expect(md).toContain(
      "4.5 commands/msg (evalsha 2, xadd 1, xgroup delconsumer 1, hincrby 0.5); 0.5 queue ops/msg",
    );
  });

  it("shows a missed target as MISSED in the check", () => {
    const { lines, missed } = check({
      startedAt,
      loneMessage: { ...lone, commandsPerMessage: 26.92, queueOpsPerMessage: 0 },
    });
    expect(missed).toBe(1);
    expect(lines).toEqual([
      `MISSED  ${LONE}: 26.92 commands + 0 queue ops per message = $53.84 per million (Upstash $53.84 + Queues $0); 100 of 100 received, missing 0`,
    ]);
  });
});

describe("the steady stream: <= 0.1 commands per delivery, publish included, every delivery made", () => {
  it.each([
    ["met: 0.08", {}, true],
    ["met: exactly 0.1", { commandsPerDelivery: 0.1 }, true],
    ["missed: 0.1001", { commandsPerDelivery: 0.1001 }, false],
    ["missed: one delivery missing", { delivered: 99_999, missing: 1 }, false],
  ])("%s", (_case, changes, met) => {
    expect(judged({ steadyStream: { ...steady, ...changes } })).toEqual({ [STEADY]: met });
  });

  it("names the sizes the run had (a quick run's 5 s)", () => {
    expect(Object.keys(judged({ steadyStream: { ...steady, seconds: 5 } }))).toEqual([
      STEADY.replace("for 20 s", "for 5 s"),
    ]);
  });
});

describe("a backlog: <= 0.02 commands per message at batch 100, <= 1.5 at batch 1", () => {
  const rows = (at100: number[], at1: number[]) => [
    ...[1, 10, 100].map((s, i) => backlog(s, 100, at100[i]!)),
    ...[1, 10, 100].map((s, i) => backlog(s, 1, at1[i]!)),
  ];

  it.each([
    ["met at both limits exactly", [0.02, 0.02, 0.03], [1.5, 1.5, 2.8], [true, true]],
    [
      "missed at batch 100 by the 1-subscription row",
      [0.0201, 0.015, 0.01],
      [1, 1, 1],
      [false, true],
    ],
    [
      "missed at batch 1 by the 10-subscription row",
      [0.01, 0.01, 0.01],
      [1, 1.51, 1],
      [true, false],
    ],
  ])("%s", (_case, at100, at1, [met100, met1]) => {
    // The delivery table's own target (10 subscriptions, batch 100, against the reference) aside.
    expect(judged({ delivery: rows(at100, at1) })).toMatchObject({
      [BACKLOG_100]: met100,
      [BACKLOG_1]: met1,
    });
  });

  it("shows the 100-subscription row without judging it", () => {
    const at100 = targets({ startedAt, delivery: rows([0.0201, 0.0212, 0.0311], [1, 1, 1]) }).find(
      (t) => t.target === BACKLOG_100,
    );
    expect(at100?.measured).toBe(
      "0.0201 (1 subs), 0.0212 (10 subs); not judged: 0.0311 (100 subs)",
    );
  });
});

describe("an idle pass over 1,000 subscriptions = 1 command; a single publish <= 2", () => {
  it.each([
    ["both met", {}, { [IDLE]: true, [PUBLISH]: true }],
    ["a publish of 3 commands", { publishCommands: 3 }, { [IDLE]: true, [PUBLISH]: false }],
    [
      "an idle pass of 2 commands at 1,000",
      { idlePass: [...cost.idlePass.slice(0, 2), { subscriptions: 1000, commands: 2 }] },
      { [IDLE]: false, [PUBLISH]: true },
    ],
    [
      "no idle pass measured at 1,000",
      { idlePass: cost.idlePass.slice(0, 2) },
      { [IDLE]: false, [PUBLISH]: true },
    ],
  ])("%s", (_case, changes, expected) => {
    const met = judged({ cost: { ...cost, ...changes } });
    expect({ [IDLE]: met[IDLE], [PUBLISH]: met[PUBLISH] }).toEqual(expected);
  });

  it("keeps the 0- and 100-subscription figures in the measured text", () => {
    const idle = targets({ startedAt, cost }).find((t) => t.target === IDLE);
    expect(idle?.measured).toBe("1 at 0, 1 at 100, 1 at 1000");
  });
});

describe("the cost per million deliveries table", () => {
  const md = markdown({
    startedAt,
    cost,
    loneMessage: lone,
    steadyStream: steady,
    delivery: [backlog(1, 100, 0.02), backlog(10, 100, 0.021), backlog(100, 100, 0.5)],
  });

  it("prices each figure on Upstash pay-as-you-go, with the queue's operations, beside QStash", () => {
    expect(md).toContain(
      "| A lone message, publish to receipt, 1 subscriber (100 single publishes 50 ms apart) | 4.5 | 0.5 | $9 | $9.2 | $10 |",
    );
    expect(md).toContain(
      "| A steady stream: 500 msg/s in publishes of 10, 10 subs at batch 100, 20 s (publish included) | 0.08 | 0.001 | $0.16 | $0.1604 | $10 |",
    );
    expect(md).toContain(
      "| A single publish, no subscriptions (per million published) | 2 | - (not counted) | $4 | - | $10 |",
    );
  });

  it("prices the backlog by the worst of the judged rows, never the 100-subscription one", () => {
    expect(md).toContain(
      "| A backlog at batch 100, 10 subs (the worst of the delivery table's 1 and 10; publish not included) | 0.021 | - (delivered by passes, no queue) | $0.042 | - | $10 |",
    );
  });

  it("is left out of a run without any of its figures", () => {
    expect(markdown({ startedAt })).not.toContain("Cost per million deliveries");
  });
});
