import { describe, expect, it } from "vitest";
import { chart } from "../../bench/chart.ts";
import { markdown, targets } from "../../bench/report.ts";
import type { Results } from "../../bench/results.ts";

const load = (perSecond: number, p50Ms = 1, p99Ms = 2) => ({
  operations: 100,
  seconds: 100 / perSecond,
  perSecond,
  p50Ms,
  p99Ms,
});

const row = (subscriptions: number, batchSize: number, perSecond: number, reference: number) => ({
  subscriptions,
  batchSize,
  backlog: 1000,
  delivered: subscriptions * 1000,
  perSecond,
  reference,
  vsReference: perSecond / reference,
  passes: 1,
  rounds: 1,
  commandsPerMessage: batchSize === 1 ? 0.5 : 0.005,
  restRequestsPerMessage: 0.01,
});

const results: Results = {
  startedAt: "2026-11-24T00:00:00.000Z",
  cost: {
    publishCommands: 3,
    batchPublishCommands: 102,
    batchSize: 100,
    idlePass: [
      { subscriptions: 0, commands: 1 },
      { subscriptions: 1000, commands: 4 },
    ],
  },
  publish: [
    {
      concurrency: 8,
      single: load(400),
      baseline: load(700),
      floor: load(900),
      batch: { ...load(300 * 100), batchSize: 100 },
      vsBaseline: 400 / 700,
      batchGain: (300 * 100) / 400,
    },
  ],
  latency: {
    ratePerSecond: 50,
    messages: 500,
    p50Ms: 60,
    p99Ms: 90,
    maxMs: 99,
    commandsPerMessage: 13,
  },
  delivery: [row(10, 100, 60_000, 100_000), row(1, 1, 900, 1000)],
};

describe("the benchmark report", () => {
  it("checks each target against the measured figure", () => {
    const met = Object.fromEntries(targets(results).map((t) => [t.target, t.met]));
    expect(met).toMatchObject({
      "Delivery, batch 100, 10 subscriptions: >= 0.9x the reference pass": false,
      "Healthy publish -> receive p50 <= 50 ms, no manual pass": false,
      "Idle pass over 1,000 subscriptions = 1 command": false,
      "Single publish <= 2 commands in all, kick included (no subscriptions)": false,
      "Batch publish of 100 <= 103 commands": true,
      "A backlog at batch 100: <= 0.02 commands per message (the delivery table, the worst of 1 and 10 subscriptions)": true,
      "A backlog at batch 1: <= 1.5 commands per message (the delivery table, the worst of 1 and 10 subscriptions)": true,
      "Publish at concurrency 8 >= 0.5x raw XADD through the bridge": true,
      "Batch publish of 100 at concurrency 8 >= 20x single-publish msg/s": true,
    });
  });

  it.each([
    [0.89, false],
    [0.9, true],
  ])("holds the headline delivery cell to 0.9x the reference pass: %sx met is %s", (ratio, met) => {
    const headline = row(10, 100, ratio * 100_000, 100_000);
    const [delivery] = targets({ startedAt: results.startedAt, delivery: [headline] });
    expect(delivery).toMatchObject({
      target: "Delivery, batch 100, 10 subscriptions: >= 0.9x the reference pass",
      met,
    });
  });

  it("prints unmet targets in bold and the cost per million against QStash", () => {
    const md = markdown(results);
    expect(md).toContain("| **no** |");
    expect(md).toContain("vs QStash $10");
  });

  it("draws one throughput bar per publish and delivery figure, and the latencies", () => {
    const svg = chart(results);
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.match(/fill="#2563eb"/g)).toHaveLength(2 + 2 + 2);
    expect(svg).toContain("deliver 10 sub(s), batch 100");
    expect(svg).toContain("publish -&gt; receive p50/p99");
  });

  it("checks the deployed Worker's targets: busy and fast subscribers, retries, fan-out, drain", () => {
    const sustained = (
      ratePerSecond: number,
      subscriptions: number,
      delayMs: number,
      p99Ms: number,
    ) => ({
      ratePerSecond,
      subscriptions,
      delayMs,
      seconds: 150,
      messagesPerPublish: 5,
      delivered: 1000,
      p50Ms: 10,
      p99Ms,
      maxMs: p99Ms + 1,
      latePublishes: 0,
      commandsPerMessage: 0.5,
      queueOpsPerMessage: 0.001,
    });
    const drain = (how: "passes" | "cron", perSecond: number) => ({
      how,
      seconds: 100,
      perSecond,
      commandsPerMessage: 0.005,
      queueOpsPerMessage: 0.0001,
      repeats: 0,
    });
    const queued: Results = {
      startedAt: results.startedAt,
      slow: sustained(300, 3, 100, 1200),
      fast: sustained(1000, 10, 0, 240),
      lateness: {
        subscriptions: 5,
        messages: 100,
        retries: 80,
        p50Ms: 10,
        p99Ms: 900,
        maxMs: 950,
        early: 1,
        missing: 0,
        queueOpsPerMessage: 4,
      },
      fanout: {
        subscriptions: 5000,
        seconds: 9.5,
        withinOneSecond: 600,
        commandsPerDelivery: 10,
        byCommand: {},
        queueOpsPerMessage: 3,
      },
      drain: {
        messages: 1_000_000,
        subscriptions: 10,
        passes: drain("passes", 70_000),
        cron: drain("cron", 60_000),
        ratio: 60_000 / 70_000,
      },
    };
    const met = Object.fromEntries(targets(queued).map((t) => [t.target, t.met]));
    expect(met).toEqual({
      "Receivers taking 100 ms: 300 msg/s x 3 subs, p99 publish -> receive <= 1000 ms": false,
      "Fast receivers: 1000 msg/s x 10 subs, p99 publish -> receive <= 250 ms": true,
      // p99 is within a second, but one retry came early.
      "Retries come <= 1 s after they are due (p99), none early, none lost": false,
      "One message to 5000 subscriptions, all delivered <= 10 s": true,
      "Backlog of 1000000 x 10 subs drained by one cron run >= 0.9x back-to-back passes": false,
    });
    // Upstash at $0.20 per 100k commands, Queues at $0.40 per million operations.
    expect(markdown(queued)).toContain(
      "$1.0004 ($1 for 0.5 commands/msg + $0.0004 for 0.001 queue ops/msg",
    );
  });

  describe("the delayed-message targets: on time (p99 <= 1 s, none early, none lost), <= 1.5 commands each", () => {
    const delayed = (p99Ms: number, early: number, missing: number, commands: number) => ({
      messages: 2000,
      minDelayMs: 1000,
      maxDelayMs: 5000,
      p50Ms: 100,
      p99Ms,
      maxMs: p99Ms + 10,
      early,
      missing,
      publishCommandsPerMessage: 0.06,
      enterCommandsPerMessage: commands - 0.06,
      commandsPerMessage: commands,
      queueOpsPerMessage: 0.03,
    });
    const met = (d: ReturnType<typeof delayed>) =>
      targets({ startedAt: results.startedAt, delayed: d }).map((t) => t.met);

    it.each([
      ["on time and cheap", delayed(300, 0, 0, 1.2), [true, true]],
      ["late", delayed(1001, 0, 0, 1.2), [false, true]],
      ["one early", delayed(300, 1, 0, 1.2), [false, true]],
      ["one lost", delayed(300, 0, 1, 1.2), [false, true]],
      ["dear", delayed(300, 0, 0, 1.6), [true, false]],
    ])("%s", (_, figures, expected) => {
      expect(met(figures)).toEqual(expected);
    });

    it("shows the lateness and the cost of each part in the report", () => {
      expect(
        markdown({ startedAt: results.startedAt, delayed: delayed(300, 0, 0, 1.2) }),
      ).toContain(
        "1.2 commands/msg (publish 0.06 + entering 1.14, no subscriber), 0.03 queue ops/msg",
      );
    });
  });

  describe("the concurrent-push target: every message delivered, p99 publish -> receipt <= 2 s", () => {
    const TARGET =
      "Concurrent push: 1 subscription, batchSize 1, endpoint 200 ms, 50 msg/s for 30 s, default settings: every message delivered, p99 publish -> receipt <= 2 s";
    // Valid: every message delivered, p99 under 2 s.
    const concurrent = {
      ratePerSecond: 50,
      seconds: 30,
      delayMs: 200,
      batchSize: 1,
      graceMs: 60_000,
      published: 1500,
      delivered: 1500,
      missing: 0,
      p50Ms: 260,
      p99Ms: 1900,
      maxMs: 2100,
      maxInFlight: 12,
      latePublishes: 0,
      commandsPerMessage: 4,
    };
    const judge = (changes: Partial<typeof concurrent>) =>
      targets({ startedAt: results.startedAt, concurrent: { ...concurrent, ...changes } });

    it.each([
      ["met: every message delivered, p99 1.9 s", {}, true],
      ["met: p99 of exactly 2 s", { p99Ms: 2000 }, true],
      ["missed: one message missing", { delivered: 1499, missing: 1 }, false],
      ["missed: p99 of 2001 ms", { p99Ms: 2001 }, false],
      [
        "missed: nothing delivered (no latency at all)",
        { delivered: 0, missing: 1500, p99Ms: Number.NaN },
        false,
      ],
    ])("%s", (_case, changes, met) => {
      expect(judge(changes)).toEqual([expect.objectContaining({ target: TARGET, met })]);
    });

    it("reports the most requests the endpoint had in flight at once", () => {
      const md = markdown({
        startedAt: results.startedAt,
        concurrent: { ...concurrent, maxInFlight: 1 },
      });
      expect(md).toContain("max in flight 1");
      expect(md).toContain("1500 of 1500 delivered within 60 s of the last publish, missing 0");
    });
  });
  describe("the pull target: >= 0.8x a reference Worker's read + ack, the direct figure beside it", () => {
    // Valid: streamhook at 0.8x the reference Worker, 0.4x the direct XREADGROUP + XACK.
    const pullRow = {
      max: 100,
      rounds: 3,
      perSecond: 8000,
      worker: 10_000,
      vsWorker: 0.8,
      reference: 20_000,
      vsReference: 0.4,
      floorPerSecond: 30_000,
      commandsPerMessage: 0.04,
      workerCommandsPerMessage: 0.02,
      referenceCommandsPerMessage: 0.02,
    };
    const TARGET =
      "Pull, batch 100: 4 consumers pulling + acking, >= 0.8x a reference Worker's read + ack";
    const judge = (changes: Partial<typeof pullRow>) =>
      targets({
        startedAt: results.startedAt,
        pull: { messages: 30_000, consumers: 4, rows: [{ ...pullRow, ...changes }] },
      });

    it.each([
      ["met at exactly 0.8x the reference Worker, whatever the direct ratio", {}, true],
      ["missed at 0.79x the reference Worker", { perSecond: 7900, vsWorker: 0.79 }, false],
      ["met at 0.8x even far below the direct figure", { vsReference: 0.1 }, true],
    ])("%s", (_case, changes, met) => {
      expect(judge(changes)).toEqual([expect.objectContaining({ target: TARGET, met })]);
    });

    it("reports the direct-REST ratio and the floor beside the reference Worker's", () => {
      const [pull] = judge({});
      expect(pull?.measured).toContain("0.8x (8000 vs 10000 msg/s, median of 3)");
      expect(pull?.measured).toContain(
        "by hand on the bridge (XREADGROUP + XACK) 20000 msg/s = 0.4x",
      );
      expect(pull?.measured).toContain(
        "a Worker request doing nothing caps it at 30000 msg/s = 3x",
      );
    });

    it("counts results from before the reference Worker as not meeting it", () => {
      const { worker: _w, vsWorker: _v, workerCommandsPerMessage: _c, ...older } = pullRow;
      const [pull] = targets({
        startedAt: results.startedAt,
        pull: { messages: 30_000, consumers: 4, rows: [{ ...older, vsReference: 0.9 }] },
      });
      expect(pull).toMatchObject({ target: TARGET, met: false });
      expect(pull?.measured).toContain("no reference Worker figure");
    });
  });

  describe("the loaded fan-out: all delivered <= 10 s beside a steady load", () => {
    const TARGET =
      "One message to 5000 subscriptions while 300 msg/s go to 3 subscribers answering in 100 ms, all delivered <= 10 s";
    // Valid: delivered in 10 s exactly, the load delivered in full.
    const loaded = {
      subscriptions: 5000,
      seconds: 10,
      withinOneSecond: 400,
      load: {
        ratePerSecond: 300,
        perPublish: 5,
        subscriptions: 3,
        delayMs: 100,
        warmupSeconds: 5,
        published: 4500,
        delivered: 13_500,
        p50Ms: 120,
        p99Ms: 800,
        maxMs: 900,
        latePublishes: 0,
      },
    };
    const judge = (seconds: number) =>
      targets({ startedAt: results.startedAt, fanoutLoaded: { ...loaded, seconds } });

    it.each([
      [10, true],
      [10.01, false],
    ])("all delivered in %s s: met is %s", (seconds, met) => {
      expect(judge(seconds)).toEqual([expect.objectContaining({ target: TARGET, met })]);
    });

    it("judges alone and loaded apart, and shows the alone figure beside the loaded one", () => {
      const both = targets({
        startedAt: results.startedAt,
        fanout: {
          subscriptions: 5000,
          seconds: 6.4,
          withinOneSecond: 600,
          commandsPerDelivery: 10,
          byCommand: {},
          queueOpsPerMessage: 3,
        },
        fanoutLoaded: { ...loaded, seconds: 14.2 },
      });
      expect(both.map((t) => [t.target, t.met])).toEqual([
        ["One message to 5000 subscriptions, all delivered <= 10 s", true],
        [TARGET, false],
      ]);
      expect(both[1]?.measured).toBe("14.2 s (400 within the first second); alone 6.4 s");
    });

    it("reports what the load did meanwhile", () => {
      const md = markdown({ startedAt: results.startedAt, fanoutLoaded: loaded });
      expect(md).toContain("4500 messages, 13500 of 13500 deliveries, p50 120 ms, p99 800 ms");
    });
  });

  describe("the Worker's CPU per request: <= 10 ms each, the free plan's limit", () => {
    // Valid: every kind within 10 ms.
    const cpu = {
      tickMs: 10,
      floorMsPerRequest: 0.4,
      rows: [
        { what: "Publish, 1 message", requests: 500, msPerRequest: 1.2 },
        { what: "Publish, batch of 100", requests: 500, msPerRequest: 6 },
        {
          what: "Push: a batch of 100 delivered to a receiver",
          requests: 500,
          msPerRequest: 3.5,
          passes: 4,
        },
        { what: "Pull, max 100 (acking the batch before)", requests: 500, msPerRequest: 10 },
      ],
    };
    const judge = (row: number, msPerRequest: number) =>
      targets({
        startedAt: results.startedAt,
        cpu: {
          ...cpu,
          rows: cpu.rows.map((r, i) => (i === row ? { ...r, msPerRequest } : r)),
        },
      });

    it("checks each kind of request on its own row, a push batch per batch", () => {
      expect(judge(0, 1.2).map((t) => [t.target, t.met])).toEqual([
        [
          "Worker CPU, Publish, 1 message: <= 10 ms per request (the free plan's limit per invocation)",
          true,
        ],
        [
          "Worker CPU, Publish, batch of 100: <= 10 ms per request (the free plan's limit per invocation)",
          true,
        ],
        [
          "Worker CPU, Push: a batch of 100 delivered to a receiver: <= 10 ms per batch (the free plan's limit per invocation)",
          true,
        ],
        [
          "Worker CPU, Pull, max 100 (acking the batch before): <= 10 ms per request (the free plan's limit per invocation)",
          true,
        ],
      ]);
    });

    it.each([0, 1, 2, 3])("misses row %s alone at 10.001 ms", (row) => {
      expect(judge(row, 10.001).map((t) => t.met)).toEqual(cpu.rows.map((_, i) => i !== row));
    });

    it("says the figures are an upper bound, with the floor taken off", () => {
      const md = markdown({ startedAt: results.startedAt, cpu });
      expect(md).toContain("An upper bound: the runtime's own work for a request is in it.");
      expect(md).toContain("| A request doing nothing (taken off the rows below) | 0.4 |");
      expect(md).toContain(
        "| Push: a batch of 100 delivered to a receiver | 3.5 | 500 batches in 4 passes: 438 ms per pass | 10 ms |",
      );
      expect(targets({ startedAt: results.startedAt, cpu })[0]?.measured).toBe(
        "1.2 ms (upper bound, over 500; a request doing nothing: 0.4 ms)",
      );
    });
  });
});
