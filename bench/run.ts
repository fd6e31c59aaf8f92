// `npm run bench`: streamhook's speed and cost, each figure beside a baseline measured in the
// same run, on a stack the benchmark starts itself (redis-server, bridge, the Worker in workerd,
// receivers on 127.0.0.1). Prints a table; writes bench/results/latest.json, latest.md and
// latest.svg.
//
//   npm run bench                      the default run (a few minutes on 2 cores)
//   npm run bench -- --quick           small sizes, to try it out (about a minute)
//   npm run bench -- --backlog 20000 --subs 1,10,100 --batches 1,10,100
//   npm run bench -- --only publish,cost

import { parseArgs } from "node:util";
import { writeResults } from "./report.ts";
import { costScenario } from "./scenarios/cost.ts";
import { type DeliveryRow, deliveryCell } from "./scenarios/delivery.ts";
import { latencyScenario } from "./scenarios/latency.ts";
import { publishScenario } from "./scenarios/publish.ts";
import { retriesScenario } from "./scenarios/retries.ts";
import { startBenchStack } from "./stack.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    backlog: { type: "string" },
    subs: { type: "string" },
    batches: { type: "string" },
    "publish-requests": { type: "string" },
    "latency-seconds": { type: "string" },
    "latency-rate": { type: "string" },
    only: { type: "string" },
  },
});

const quick = values.quick;
const list = (text: string | undefined, fallback: number[]) =>
  text ? text.split(",").map(Number) : fallback;
const subs = list(values.subs, [1, 10, 100]);
const batches = list(values.batches, [1, 10, 100]);
// Messages per subscription by batch size: batch size 1 makes one request per message, so it
// gets a smaller backlog to keep the default run to a few minutes; --backlog sets them all.
const backlogFor = (s: number, batch: number) => {
  if (values.backlog) return Number(values.backlog);
  const perCell = quick
    ? { 1: 500, 10: 4_000, 100: 20_000 }
    : { 1: 2_000, 10: 20_000, 100: 200_000 };
  return Math.max(10, Math.round((perCell[batch as 1 | 10 | 100] ?? 20_000) / s));
};
const only = values.only ? new Set(values.only.split(",")) : null;
const runs = (name: string) => only === null || only.has(name);

const stack = await startBenchStack({ RETRY_BASE_MS: "50", RETRY_MAX_MS: "1000" });
const log = (line: string) => process.stdout.write(`${line}\n`);
try {
  const results: Parameters<typeof writeResults>[0] = { startedAt: new Date().toISOString() };
  if (runs("cost")) {
    log("cost: publish and idle passes...");
    results.cost = await costScenario(stack, 100);
  }
  if (runs("publish")) {
    log("publish: single, batch and raw XADD at concurrency 1, 8, 32...");
    results.publish = await publishScenario(stack, {
      concurrencies: [1, 8, 32],
      requests: Number(values["publish-requests"] ?? (quick ? 300 : 1500)),
      batchSize: 100,
    });
  }
  if (runs("latency")) {
    log("latency: publish -> receive with the kick...");
    results.latency = await latencyScenario(stack, {
      ratePerSecond: Number(values["latency-rate"] ?? 50),
      seconds: Number(values["latency-seconds"] ?? (quick ? 4 : 10)),
    });
  }
  if (runs("delivery")) {
    results.delivery = [] as DeliveryRow[];
    for (const batch of batches) {
      for (const s of subs) {
        const backlog = backlogFor(s, batch);
        log(`delivery: ${s} subscription(s) x ${backlog} messages, batch ${batch}...`);
        // The headline cell (the 0.7x target) runs three rounds; the median is reported.
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
  log("");
  log(await writeResults(results));
} finally {
  await stack.stop();
}
