// `npm run bench`'s command line (bench/options.ts, bench/check.ts), without running a scenario:
// a wrong flag or value is refused before the stack starts, a partial run never writes over the
// committed results, and --check-only turns a results file into an exit code.

import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type BenchOptions,
  COMMITTED_RESULTS_DIR,
  parseBenchArgs,
  resultsDir,
  SCENARIOS,
} from "../../bench/options.ts";
import type { Results } from "../../bench/results.ts";
import { UsageError } from "../../dev/cli.ts";
import { runCommand } from "../helpers/run-command.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bench-cli-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// Should the benchmark ever start instead of refusing, it builds the Worker aside, not over the
// build this test run uses.
const bench = (args: string[]) =>
  runCommand("bench/run.ts", args, { env: { STREAMHOOK_BUILD_DIR: join(dir, "build") } });

function options(argv: string[]): BenchOptions {
  const parsed = parseBenchArgs(argv);
  if (parsed.kind !== "run") throw new Error(`not a run: ${argv.join(" ")}`);
  return parsed.options;
}

describe("npm run bench: a wrong command line exits 2 before anything starts", () => {
  it.each([
    ["an unknown flag", ["--quik"], "Unknown option '--quik'"],
    ["an unknown scenario in --only", ["--only", "cost,publsh"], 'no scenario named "publsh"'],
    ["an empty --only", ["--only", ""], 'no scenario named ""'],
    ["a size that is not a number", ["--backlog", "lots"], "--backlog must be a whole number"],
    ["a size of 0", ["--fanout-subs", "0"], "--fanout-subs must be a whole number of at least 1"],
    [
      "a list with a bad item",
      ["--subs", "1,ten"],
      '--subs must be a whole number of at least 1, got "ten"',
    ],
    [
      "a batch size above 1000",
      ["--batches", "10,2000"],
      "--batches must be a whole number from 1 to 1000",
    ],
    ["a rate of 0", ["--latency-rate", "0"], "--latency-rate must be a number above 0"],
    [
      "a fan-out load rate of 0",
      ["--fanout-load-rate", "0"],
      "--fanout-load-rate must be a number above 0",
    ],
    [
      "a CPU reading of 0 requests",
      ["--cpu-requests", "0"],
      "--cpu-requests must be a whole number of at least 1",
    ],
    ["--out without a directory", ["--out"], "argument missing"],
    [
      "--check-only with a run option",
      ["--check-only", "x.json", "--quick"],
      "takes no other option: --quick",
    ],
    ["--check-only on a missing file", ["--check-only", "/nonexistent/latest.json"], "cannot read"],
  ])("%s", async (_case, args, message) => {
    const { code, stdout, stderr } = await bench(args);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr).toContain("usage: npm run bench");
    expect(stderr).not.toContain("results will go to"); // nothing started
    expect(stdout).toBe("");
  });
});

describe("where npm run bench writes its results", () => {
  it("writes the default run to the committed bench/results/", () => {
    expect(options([]).partial).toBe(false);
    expect(resultsDir(options([]))).toBe(COMMITTED_RESULTS_DIR);
  });

  it.each([
    ["--quick", ["--quick"]],
    ["--only", ["--only", "cost"]],
    ["a size", ["--backlog", "500"]],
  ])(
    "writes a run with %s to a new temporary directory, not bench/results/",
    async (_case, args) => {
      const [first, second] = [resultsDir(options(args)), resultsDir(options(args))];
      try {
        expect(first).not.toBe(COMMITTED_RESULTS_DIR);
        expect(first.startsWith(tmpdir())).toBe(true);
        expect(second).not.toBe(first); // a fresh one each run
      } finally {
        for (const made of [first, second]) await rm(made, { recursive: true, force: true });
      }
    },
  );

  it("writes to --out when given, even the default run", () => {
    expect(resultsDir(options(["--out", "/tmp/mine"]))).toBe("/tmp/mine");
    expect(resultsDir(options(["--quick", "--out", "/tmp/mine"]))).toBe("/tmp/mine");
  });

  it("runs the --only scenarios in the benchmark's own order", () => {
    expect(options(["--only", "pull,cost"]).scenarios).toEqual(["cost", "pull"]);
    expect(options([]).scenarios).toEqual([...SCENARIOS]);
  });

  it("runs issue 21's lone-message and steady-stream scenarios in the default run, right after latency, each alone with --only", () => {
    expect(options([]).scenarios.slice(2, 5)).toEqual(["latency", "lone-message", "steady-stream"]);
    expect(options(["--only", "lone-message"]).scenarios).toEqual(["lone-message"]);
    expect(options(["--only", "steady-stream,cost"]).scenarios).toEqual(["cost", "steady-stream"]);
  });

  it("runs the ordered-delivery scenario in the default run, and alone with --only ordered", () => {
    expect(options([]).scenarios).toContain("ordered");
    expect(options(["--only", "ordered"]).scenarios).toEqual(["ordered"]);
  });

  it("runs the concurrent-push scenario in the default run, and alone with --only concurrent", () => {
    expect(options([]).scenarios).toContain("concurrent");
    expect(options(["--only", "concurrent"]).scenarios).toEqual(["concurrent"]);
    expect(options(["--only", "concurrent,cost"]).scenarios).toEqual(["cost", "concurrent"]);
  });

  it("runs the loaded fan-out and the Worker CPU scenarios in the default run, each alone with --only", () => {
    expect(options([]).scenarios).toEqual(expect.arrayContaining(["fanout-loaded", "cpu"]));
    expect(options(["--only", "fanout-loaded"]).scenarios).toEqual(["fanout-loaded"]);
    expect(options(["--only", "cpu,fanout-loaded,fanout"]).scenarios).toEqual([
      "fanout",
      "fanout-loaded",
      "cpu",
    ]);
  });

  it.each([
    ["--fanout-load-rate", "150", "fanoutLoadRate", 150],
    ["--cpu-requests", "50", "cpuRequests", 50],
  ] as const)("takes %s %s as a size of a partial run", (flag, value, field, expected) => {
    const parsed = options([flag, value]);
    expect(parsed[field]).toBe(expected);
    expect(parsed.partial).toBe(true);
    expect(options([])[field]).toBeNull(); // the default run's own size
  });

  it("throws a UsageError, never runs, on a wrong line", () => {
    expect(() => parseBenchArgs(["--only", "nope"])).toThrow(UsageError);
  });
});

describe("npm run bench -- --check-only <results.json>", () => {
  // Valid results: every target the cost figures measure is met.
  const met: Results = {
    startedAt: "2026-11-24T00:00:00.000Z",
    cost: {
      publishCommands: 2,
      batchPublishCommands: 102,
      batchSize: 100,
      idlePass: [
        { subscriptions: 0, commands: 1 },
        { subscriptions: 1000, commands: 1 },
      ],
    },
  };
  // The same with one figure past its target: an idle pass of 4 commands.
  const missed: Results = {
    ...met,
    cost: { ...met.cost!, idlePass: [{ subscriptions: 1000, commands: 4 }] },
  };

  beforeAll(async () => {
    await writeFile(join(dir, "met.json"), JSON.stringify(met));
    await writeFile(join(dir, "missed.json"), JSON.stringify(missed));
    await writeFile(join(dir, "other.json"), JSON.stringify({ hello: "world" }));
  });

  it("exits 0 when every target is met, listing them on stdout", async () => {
    const { code, stdout, stderr } = await bench(["--check-only", join(dir, "met.json")]);
    expect(code).toBe(0);
    expect(stdout).toContain(
      "met     Idle pass over 1,000 subscriptions = 1 command: 1 at 0, 1 at 1000",
    );
    expect(stdout).not.toContain("MISSED");
    expect(stderr).toContain("check: 3 of 3 targets met");
  });

  it("exits 1 when a target is missed, and names it", async () => {
    const { code, stdout, stderr } = await bench(["--check-only", join(dir, "missed.json")]);
    expect(code).toBe(1);
    expect(stdout).toContain("MISSED  Idle pass over 1,000 subscriptions = 1 command: 4 at 1000");
    expect(stderr).toContain("check: 1 of 3 targets missed");
  });

  it("exits 2 on a file that is not benchmark results", async () => {
    const { code, stderr } = await bench(["--check-only", join(dir, "other.json")]);
    expect(code).toBe(2);
    expect(stderr).toContain("is not a benchmark results file");
  });
});
