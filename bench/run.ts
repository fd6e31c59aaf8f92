// `npm run bench`: streamhook's speed and cost, each figure beside a baseline measured in the
// same run, on a stack the benchmark starts itself (redis-server, bridge, the Worker in workerd,
// receivers on 127.0.0.1). Progress goes to stderr; the Markdown report to stdout. The default
// run writes latest.json, latest.md and latest.svg to bench/results/ (committed); a partial run
// writes them to a temporary directory, or to --out (options.ts has the usage).
//
//   npm run bench                      the default run (about 15 minutes on 2 cores)
//   npm run bench -- --quick           small sizes and short runs, to try it out (3 minutes)
//   npm run bench -- --backlog 20000 --subs 1,10,100 --batches 1,10,100
//   npm run bench -- --only publish,cost --out /tmp/bench --check
//   npm run bench -- --check-only bench/results/latest.json
//
// Scenarios: cost, publish, latency (by the kick), lone-message and steady-stream (issue 21's
// costs, on the Worker as deployed with its delivery queue: one subscriber getting a message now
// and then; 500 msg/s to 10 subscribers), delivery, retries (driven pass by pass), then those of
// the Worker as deployed with its delivery queue and no manual pass: slow (busy subscribers), fast, lateness (retries on time), delayed (delayed messages on
// time, and their cost), fanout, fanout-loaded (the
// same beside a steady load of busy subscribers), drain (a backlog drained by one cron run
// against back-to-back passes), retention (trimming's memory and commands), pull (4 consumers of
// a pull subscription against a reference Worker's XREADGROUP + XACK, and the same by hand),
// concurrent (one subscription at batch size 1 whose endpoint takes 200 ms: 50 msg/s needs
// requests in flight at once), cpu (the Worker's CPU per publish, push batch and pull, read from
// its workerd process).

import { commandLine, UsageError } from "../dev/cli.ts";
import { type Check, check, readResults, verdict } from "./check.ts";
import { parseBenchArgs, resultsDir, type Scenario, USAGE } from "./options.ts";
import { writeResults } from "./report.ts";
import type { Results } from "./results.ts";
import { backlogScenario } from "./scenarios/backlog.ts";
import { concurrentScenario } from "./scenarios/concurrent.ts";
import { costScenario } from "./scenarios/cost.ts";
import { cpuScenario } from "./scenarios/cpu.ts";
import { delayedScenario } from "./scenarios/delayed.ts";
import { type DeliveryRow, deliveryCell } from "./scenarios/delivery.ts";
import { fanoutScenario, loadedFanoutScenario } from "./scenarios/fanout.ts";
import { latencyScenario } from "./scenarios/latency.ts";
import { loneMessageScenario } from "./scenarios/lone-message.ts";
import { orderedScenario } from "./scenarios/ordered.ts";
import { publishScenario } from "./scenarios/publish.ts";
import { pullScenario } from "./scenarios/pull.ts";
import { retentionScenario } from "./scenarios/retention.ts";
import { retriesScenario } from "./scenarios/retries.ts";
import { retryLatenessScenario } from "./scenarios/retry-lateness.ts";
import { steadyStreamScenario } from "./scenarios/steady-stream.ts";
import { sustainedScenario } from "./scenarios/sustained.ts";
import { startBenchStack } from "./stack.ts";

const command = commandLine("bench", USAGE, (argv) => {
  const parsed = parseBenchArgs(argv);
  if (parsed.kind === "run") return parsed;
  const results = readResults(parsed.file);
  try {
    return { kind: "check-only" as const, check: check(results) };
  } catch (error) {
    // A file of another version of the benchmark, missing figures the targets read.
    throw new UsageError(`--check-only: cannot check ${parsed.file}: ${(error as Error).message}`);
  }
});
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Prints the check (every target on stdout when nothing else is there), returns the exit code. */
function report(result: Check, onStdout: boolean): number {
  const print = onStdout ? (line: string) => process.stdout.write(`${line}\n`) : log;
  for (const line of result.lines) {
    if (onStdout || line.startsWith("MISSED")) print(line);
  }
  log(verdict(result));
  return result.missed > 0 ? 1 : 0;
}

if (command.kind === "check-only") process.exit(report(command.check, true));

const { options } = command;
const quick = options.quick;
const { subs, batches } = options;
// Messages per subscription by batch size: batch size 1 makes one request per message, so it
// gets a smaller backlog to keep the default run to a few minutes; --backlog sets them all.
const backlogFor = (s: number, batch: number) => {
  if (options.backlog !== null) return options.backlog;
  const perCell = quick
    ? { 1: 500, 10: 4_000, 100: 20_000 }
    : { 1: 2_000, 10: 20_000, 100: 200_000 };
  return Math.max(10, Math.round((perCell[batch as 1 | 10 | 100] ?? 20_000) / s));
};
const runs = (name: Scenario) => options.scenarios.includes(name);
const outDir = resultsDir(options);
log(`results will go to ${outDir}${options.partial ? " (a partial run)" : ""}`);

// A short retry schedule on both Workers, so that runs with failures end within the benchmark:
// 50 ms doubling to 1 s for the passes, 1 s doubling to 8 s as deployed (retries that go
// through the queue's whole-second delays).
const DEPLOYED_RETRY = { retryBaseMs: 1000, retryMaxMs: 8000 };
const stack = await startBenchStack({
  kicked: {
    RETRY_BASE_MS: String(DEPLOYED_RETRY.retryBaseMs),
    RETRY_MAX_MS: String(DEPLOYED_RETRY.retryMaxMs),
  },
  manual: { RETRY_BASE_MS: "50", RETRY_MAX_MS: "1000" },
});
try {
  const results: Results = { startedAt: new Date().toISOString() };
  if (runs("cost")) {
    log("cost: publish and idle passes...");
    results.cost = await costScenario(stack, 100);
  }
  if (runs("publish")) {
    log("publish: single, batch and raw XADD at concurrency 1, 8, 32...");
    results.publish = await publishScenario(stack, {
      concurrencies: [1, 8, 32],
      requests: options.publishRequests ?? (quick ? 300 : 1500),
      batchSize: 100,
    });
  }
  if (runs("latency")) {
    log("latency: publish -> receive with the kick...");
    results.latency = await latencyScenario(stack, {
      ratePerSecond: options.latencyRate ?? 50,
      seconds: options.latencySeconds ?? (quick ? 4 : 10),
    });
  }
  // Issue 21's two figures of the Worker as deployed, run while the kicked Worker has nothing
  // else to do: Redis' command count is the whole database's.
  if (runs("lone-message")) {
    log("lone-message: 100 single publishes 50 ms apart to 1 subscriber, queue bound...");
    results.loneMessage = await loneMessageScenario(stack, {
      messages: 100,
      intervalMs: 50,
      timeoutMs: 30_000,
    });
  }
  if (runs("steady-stream")) {
    const seconds = quick ? 5 : 20;
    log(
      `steady-stream: 500 msg/s in publishes of 10 to 10 subscribers at batch 100, ${seconds} s...`,
    );
    results.steadyStream = await steadyStreamScenario(stack, {
      ratePerSecond: 500,
      perPublish: 10,
      subscriptions: 10,
      batchSize: 100,
      seconds,
      timeoutMs: 120_000,
    });
  }
  if (runs("delivery")) {
    results.delivery = [] as DeliveryRow[];
    for (const batch of batches) {
      for (const s of subs) {
        const backlog = backlogFor(s, batch);
        log(`delivery: ${s} subscription(s) x ${backlog} messages, batch ${batch}...`);
        // The headline cell (the 0.9x target) runs three rounds; the median is reported.
        const rounds = s === 10 && batch === 100 ? 3 : 1;
        results.delivery.push(
          await deliveryCell(stack, s, batch, backlog, { rounds, timeoutMs: 600_000 }),
        );
      }
    }
  }
  if (runs("retries")) {
    log("retries: 30% of requests failing...");
    results.retries = await retriesScenario(stack, {
      subscriptions: 10,
      backlog: quick ? 500 : 2_000,
      batchSize: 100,
      failureRate: 0.3,
    });
  }
  const sustainedSeconds = options.sustainedSeconds ?? (quick ? 20 : 150);
  if (runs("slow")) {
    log(`slow: 300 msg/s to 3 subscribers answering in 100 ms, ${sustainedSeconds} s...`);
    results.slow = await sustainedScenario(stack, "slow", {
      ratePerSecond: 300,
      subscriptions: 3,
      delayMs: 100,
      seconds: sustainedSeconds,
      perPublish: 5,
    });
  }
  if (runs("fast")) {
    log("fast: 1000 msg/s to 10 subscribers...");
    results.fast = await sustainedScenario(stack, "fast", {
      ratePerSecond: 1000,
      subscriptions: 10,
      delayMs: 0,
      seconds: quick ? 10 : 30,
      perPublish: 10,
    });
  }
  if (runs("lateness")) {
    log("lateness: retries against their due time, half the requests failing...");
    results.lateness = await retryLatenessScenario(stack, {
      subscriptions: 5,
      ratePerSecond: 10,
      seconds: quick ? 10 : 30,
      failureRate: 0.5,
      maxAttempts: 5,
      policy: DEPLOYED_RETRY,
    });
  }
  if (runs("delayed")) {
    const messages = options.delayedMessages ?? (quick ? 500 : 2000);
    log(`delayed: ${messages} messages due 1-5 s ahead, without and with a subscriber...`);
    results.delayed = await delayedScenario(stack, { messages });
  }
  const fanoutSubs = options.fanoutSubs ?? (quick ? 1000 : 5000);
  if (runs("fanout")) {
    log(`fanout: one message to ${fanoutSubs} subscriptions...`);
    results.fanout = await fanoutScenario(stack, {
      subscriptions: fanoutSubs,
      timeoutMs: 120_000,
    });
  }
  if (runs("fanout-loaded")) {
    // The load: the busy-subscriber scenario's (slow, above).
    const load = {
      ratePerSecond: options.fanoutLoadRate ?? 300,
      perPublish: 5,
      subscriptions: 3,
      delayMs: 100,
    };
    log(
      `fanout-loaded: one message to ${fanoutSubs} subscriptions while ${load.ratePerSecond} msg/s go to ${load.subscriptions} subscribers answering in ${load.delayMs} ms...`,
    );
    results.fanoutLoaded = await loadedFanoutScenario(stack, {
      subscriptions: fanoutSubs,
      timeoutMs: 120_000,
      load,
      warmupMs: 5_000,
      drainMs: 120_000,
    });
  }
  if (runs("drain")) {
    const messages = options.drainBacklog ?? (quick ? 50_000 : 1_000_000);
    log(`drain: ${messages} messages x 10 subscriptions, by passes and by one cron run...`);
    results.drain = await backlogScenario(stack, {
      messages,
      subscriptions: 10,
      timeoutMs: 1_800_000,
    });
  }
  if (runs("retention")) {
    const messages = quick ? 20_000 : 100_000;
    log(`retention: ${messages} messages to a channel with retention and one without...`);
    results.retention = await retentionScenario(stack, { messages, maxMessages: 10_000 });
  }
  if (runs("pull")) {
    const messages = options.pullBacklog ?? (quick ? 10_000 : 30_000);
    const pullBatches = options.pullBatches;
    log(
      `pull: ${messages} messages x 3 rounds pulled and acked by 4 consumers, ${pullBatches.join(", ")} per pull...`,
    );
    results.pull = await pullScenario(stack, {
      messages,
      consumers: 4,
      batches: pullBatches,
      rounds: 3,
    });
  }
  if (runs("concurrent")) {
    const seconds = quick ? 10 : 30;
    log(`concurrent: 50 msg/s for ${seconds} s to 1 subscription at batch 1, endpoint 200 ms...`);
    // The grace after publishing: 30x the target's p99, so a message still on its way is not
    // counted missing, while an engine that falls behind ends the scenario in a minute.
    results.concurrent = await concurrentScenario(stack, {
      ratePerSecond: 50,
      seconds,
      delayMs: 200,
      graceMs: 60_000,
    });
  }
  if (runs("ordered")) {
    const messages = quick ? 2_000 : 10_000;
    const fifoMessages = quick ? 200 : 1_000;
    log(
      `ordered: ${messages} messages unordered and over 100 keys, ${fifoMessages} on 1 key, endpoint 10 ms...`,
    );
    results.ordered = await orderedScenario(stack, {
      messages,
      fifoMessages,
      delayMs: 10,
      timeoutMs: 600_000,
    });
  }
  if (runs("cpu")) {
    const requests = options.cpuRequests ?? (quick ? 100 : 500);
    log(`cpu: the Worker's CPU over ${requests} sequential requests of each kind...`);
    results.cpu = await cpuScenario(stack, { requests });
  }
  const markdown = await writeResults(results, outDir);
  process.stdout.write(`${markdown}\n`);
  log(`results written to ${outDir}: latest.json, latest.md, latest.svg`);
  if (options.check) process.exitCode = report(check(results), false);
} finally {
  await stack.stop();
}
