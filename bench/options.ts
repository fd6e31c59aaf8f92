// `npm run bench`'s command line: its usage, and the options read and checked before anything
// starts (dev/cli.ts: --help exits 0, anything wrong exits 2 with the usage), so a typo never
// costs a stack start or a quarter of an hour of measuring.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { integerOption, parseOptions, positiveOption, UsageError } from "../dev/cli.ts";

/** The scenarios, in the order a run measures them; `--only` takes these names. */
export const SCENARIOS = [
  "cost",
  "publish",
  "latency",
  "lone-message",
  "steady-stream",
  "delivery",
  "retries",
  "slow",
  "fast",
  "lateness",
  "delayed",
  "fanout",
  "fanout-loaded",
  "drain",
  "retention",
  "pull",
  "concurrent",
  "ordered",
  "cpu",
] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Where the default run's results live: committed, and shown in docs/performance.md. */
export const COMMITTED_RESULTS_DIR = join(import.meta.dirname, "results");

/**
 * `items` joined by ", " in lines of at most 95 characters: the first starts at column `first`,
 * the others are indented to `column`. The usage's scenario list, kept within the terminal.
 */
function wrapList(items: readonly string[], column: number, first: number): string {
  const lines: string[] = [];
  let line = "";
  for (const item of items) {
    const next = line === "" ? item : `${line}, ${item}`;
    if ((lines.length === 0 ? first : column) + next.length + 1 > 95) {
      lines.push(`${line},`);
      line = item;
    } else {
      line = next;
    }
  }
  lines.push(line);
  return lines.join(`\n${" ".repeat(column)}`);
}

export const USAGE = `usage: npm run bench -- [options]
       npm run bench -- --check-only <results.json>

Starts its own stack, runs the scenarios (docs/performance.md), prints the Markdown report on
stdout and writes latest.json, latest.md and latest.svg; progress goes to stderr. The default
run (all scenarios at full size: long) writes to bench/results/, the committed results. A
partial run (--quick, --only or any size below) writes to a new temporary directory instead,
and says where, unless --out is given.

  --out <dir>                  write the results here
  --check                      exit 1 if a target is missed (after writing the results)
  --check-only <results.json>  run nothing: check a results file's figures against the
                               targets; exit 1 if one is missed
  --quick                      small sizes and short runs, to try it out (about 3 minutes)
  --only <name,...>            only these scenarios: ${wrapList(SCENARIOS, 31, 52)}

Sizes:
  --backlog <n>                messages per subscription in every delivery cell
  --subs <n,...>               subscriptions per delivery cell (default 1,10,100)
  --batches <n,...>            batch sizes, 1-1000 (default 1,10,100)
  --publish-requests <n>       requests per publish measurement (default 1500; quick 300)
  --latency-seconds <s>        latency run length (default 10; quick 4)
  --latency-rate <per s>       latency publish rate (default 50)
  --sustained-seconds <s>      busy-subscriber run length (default 150; quick 20)
  --delayed-messages <n>       delayed messages, 1-5 s ahead, per measurement (default 2000;
                               quick 500)
  --fanout-subs <n>            fan-out subscriptions, alone and loaded (default 5000; quick 1000)
  --fanout-load-rate <per s>   the loaded fan-out's background publish rate (default 300)
  --drain-backlog <n>          drain scenario messages (default 1000000; quick 50000)
  --pull-backlog <n>           pull scenario messages per round (default 30000; quick 10000)
  --pull-batches <n,...>       messages per pull, 1-1000 (default 100,1000)
  --cpu-requests <n>           sequential requests per Worker CPU reading (default 500; quick 100)

  -h, --help                   print this and exit`;

export interface BenchOptions {
  quick: boolean;
  /** The scenarios to run, in SCENARIOS order. */
  scenarios: Scenario[];
  /** True unless this is the default run: then the committed results are left alone. */
  partial: boolean;
  /** Where the results go; null: the committed directory for the default run, else a temp dir. */
  out: string | null;
  check: boolean;
  backlog: number | null;
  subs: number[];
  batches: number[];
  publishRequests: number | null;
  latencySeconds: number | null;
  latencyRate: number | null;
  sustainedSeconds: number | null;
  delayedMessages: number | null;
  fanoutSubs: number | null;
  fanoutLoadRate: number | null;
  drainBacklog: number | null;
  pullBacklog: number | null;
  pullBatches: number[];
  cpuRequests: number | null;
}

export type BenchCommand =
  | { kind: "run"; options: BenchOptions }
  | { kind: "check-only"; file: string };

const MAX = Number.MAX_SAFE_INTEGER;

const SIZE_OPTIONS = [
  "backlog",
  "subs",
  "batches",
  "publish-requests",
  "latency-seconds",
  "latency-rate",
  "sustained-seconds",
  "delayed-messages",
  "fanout-subs",
  "fanout-load-rate",
  "drain-backlog",
  "pull-backlog",
  "pull-batches",
  "cpu-requests",
] as const;

/** Reads and checks the command line; throws a UsageError on anything wrong. */
export function parseBenchArgs(argv: string[]): BenchCommand {
  const values = parseOptions(argv, {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    check: { type: "boolean", default: false },
    "check-only": { type: "string" },
    ...Object.fromEntries(SIZE_OPTIONS.map((name) => [name, { type: "string" as const }])),
  } as const);
  const sizes = values as Partial<Record<(typeof SIZE_OPTIONS)[number], string>>;

  if (values["check-only"] !== undefined) {
    const given = ["quick", "check", "only", "out", ...SIZE_OPTIONS].filter(
      (name) => name in values && values[name as keyof typeof values] !== false,
    );
    if (given.length > 0) {
      throw new UsageError(`--check-only runs nothing, so it takes no other option: --${given[0]}`);
    }
    if (values["check-only"] === "") throw new UsageError("--check-only needs a results file");
    return { kind: "check-only", file: values["check-only"] };
  }

  const int = (flag: (typeof SIZE_OPTIONS)[number], min = 1, max = MAX) => {
    const text = sizes[flag];
    return text === undefined ? null : integerOption(flag, text, min, max);
  };
  const positive = (flag: (typeof SIZE_OPTIONS)[number]) => {
    const text = sizes[flag];
    return text === undefined ? null : positiveOption(flag, text);
  };
  const list = (flag: "subs" | "batches" | "pull-batches", max: number, fallback: number[]) => {
    const text = sizes[flag];
    if (text === undefined) return fallback;
    return text.split(",").map((item) => integerOption(flag, item, 1, max));
  };

  let scenarios: Scenario[] = [...SCENARIOS];
  if (values.only !== undefined) {
    const names = values.only.split(",").map((name) => name.trim());
    const unknown = names.filter((name) => !(SCENARIOS as readonly string[]).includes(name));
    if (unknown.length > 0) {
      throw new UsageError(
        `--only: no scenario named ${unknown.map((n) => `"${n}"`).join(", ")} (there are: ${SCENARIOS.join(", ")})`,
      );
    }
    scenarios = SCENARIOS.filter((name) => names.includes(name));
  }
  if (values.out === "") throw new UsageError("--out needs a directory");

  return {
    kind: "run",
    options: {
      quick: values.quick,
      scenarios,
      partial: values.quick || values.only !== undefined || SIZE_OPTIONS.some((f) => f in sizes),
      out: values.out ?? null,
      check: values.check,
      backlog: int("backlog"),
      subs: list("subs", MAX, [1, 10, 100]),
      batches: list("batches", 1000, [1, 10, 100]),
      publishRequests: int("publish-requests"),
      latencySeconds: positive("latency-seconds"),
      latencyRate: positive("latency-rate"),
      sustainedSeconds: positive("sustained-seconds"),
      delayedMessages: int("delayed-messages"),
      fanoutSubs: int("fanout-subs"),
      fanoutLoadRate: positive("fanout-load-rate"),
      drainBacklog: int("drain-backlog"),
      pullBacklog: int("pull-backlog"),
      pullBatches: list("pull-batches", 1000, [100, 1000]),
      cpuRequests: int("cpu-requests"),
    },
  };
}

/**
 * Where a run's results go: --out if given; the committed bench/results/ for the default run;
 * a new temporary directory for a partial one, so it never overwrites the committed figures.
 */
export function resultsDir(options: BenchOptions): string {
  if (options.out !== null) return resolve(options.out);
  if (options.partial) return mkdtempSync(join(tmpdir(), "streamhook-bench-"));
  return COMMITTED_RESULTS_DIR;
}
