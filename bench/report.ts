// The benchmark's report: the targets checked against the figures, a Markdown table (printed,
// and written for the README), the raw JSON, and an SVG chart of throughput and latency.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chart } from "./chart.ts";
import { round } from "./measure.ts";
import type { CostResult } from "./scenarios/cost.ts";
import type { DeliveryRow } from "./scenarios/delivery.ts";
import type { LatencyResult } from "./scenarios/latency.ts";
import type { PublishRow } from "./scenarios/publish.ts";
import type { RetriesResult } from "./scenarios/retries.ts";

export interface Results {
  startedAt: string;
  cost?: CostResult;
  publish?: PublishRow[];
  latency?: LatencyResult;
  delivery?: DeliveryRow[];
  retries?: RetriesResult;
}

interface Target {
  target: string;
  measured: string;
  met: boolean;
}

const UPSTASH_PER_COMMAND = 0.2 / 100_000; // pay-as-you-go, $ per command
const QSTASH_PER_MESSAGE = 1 / 100_000; // $ per message

export function targets(r: Results): Target[] {
  const out: Target[] = [];
  const cell = (s: number, b: number) =>
    r.delivery?.find((d) => d.subscriptions === s && d.batchSize === b);
  const headline = cell(10, 100);
  if (headline) {
    out.push({
      target: "Delivery, batch 100, 10 subscriptions: >= 0.7x the reference pass",
      measured: `${headline.vsReference}x (${headline.perSecond} vs ${headline.reference} msg/s)`,
      met: headline.vsReference >= 0.7,
    });
  }
  if (r.latency) {
    out.push({
      target: "Healthy publish -> receive p50 <= 50 ms, no manual pass",
      measured: `p50 ${round(r.latency.p50Ms, 1)} ms, p99 ${round(r.latency.p99Ms, 1)} ms`,
      met: r.latency.p50Ms <= 50,
    });
  }
  if (r.cost) {
    const worst = Math.max(...r.cost.idlePass.map((p) => p.commands));
    out.push({
      target: "Idle pass <= 3 commands whatever the number of subscriptions",
      measured: r.cost.idlePass.map((p) => `${p.commands} at ${p.subscriptions}`).join(", "),
      met: worst <= 3,
    });
    out.push({
      target: "Single publish <= 3 commands in all, kick included (no subscriptions)",
      measured: `${r.cost.publishCommands}`,
      met: r.cost.publishCommands <= 3,
    });
    out.push({
      target: `Batch publish of ${r.cost.batchSize} <= ${r.cost.batchSize + 3} commands`,
      measured: `${r.cost.batchPublishCommands}`,
      met: r.cost.batchPublishCommands <= r.cost.batchSize + 3,
    });
  }
  for (const [batch, limit] of [
    [100, 0.05],
    [1, 3],
  ] as const) {
    const rows = r.delivery?.filter((d) => d.batchSize === batch) ?? [];
    if (rows.length === 0) continue;
    const worst = Math.max(...rows.map((d) => d.commandsPerMessage));
    out.push({
      target: `Delivery <= ${limit} commands per message at batch ${batch}`,
      measured: rows.map((d) => `${d.commandsPerMessage} (${d.subscriptions} subs)`).join(", "),
      met: worst <= limit,
    });
  }
  for (const row of r.publish ?? []) {
    out.push({
      target: `Publish at concurrency ${row.concurrency} >= 0.5x raw XADD through the bridge`,
      measured: `${round(row.vsBaseline)}x (${round(row.single.perSecond, 0)} vs ${round(row.baseline.perSecond, 0)}/s; a Worker request doing nothing: ${round(row.floor.perSecond, 0)}/s = ${round(row.floor.perSecond / row.baseline.perSecond)}x)`,
      met: row.vsBaseline >= 0.5,
    });
    out.push({
      target: `Batch publish of 100 at concurrency ${row.concurrency} >= 20x single-publish msg/s`,
      measured: `${round(row.batchGain, 1)}x`,
      met: row.batchGain >= 20,
    });
  }
  return out;
}

function table(headers: string[], rows: (string | number)[][]): string {
  return [
    `| ${headers.join(" | ")} |`,
    `| ${headers.map(() => "---").join(" | ")} |`,
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ].join("\n");
}

export function markdown(r: Results): string {
  const parts: string[] = [`Run of ${r.startedAt}.`];
  parts.push(
    table(
      ["Target", "Measured", "Met"],
      targets(r).map((t) => [t.target, t.measured, t.met ? "yes" : "**no**"]),
    ),
  );
  if (r.publish) {
    parts.push(
      table(
        [
          "Concurrency",
          "Publish msg/s",
          "p50 / p99 ms",
          "Raw XADD/s",
          "p50 / p99 ms",
          "Worker floor req/s",
          "p50 ms",
          "Batch-100 msg/s",
          "p50 / p99 ms",
        ],
        r.publish.map((p) => [
          p.concurrency,
          round(p.single.perSecond, 0),
          `${round(p.single.p50Ms, 1)} / ${round(p.single.p99Ms, 1)}`,
          round(p.baseline.perSecond, 0),
          `${round(p.baseline.p50Ms, 1)} / ${round(p.baseline.p99Ms, 1)}`,
          round(p.floor.perSecond, 0),
          round(p.floor.p50Ms, 1),
          round(p.batch.perSecond, 0),
          `${round(p.batch.p50Ms, 1)} / ${round(p.batch.p99Ms, 1)}`,
        ]),
      ),
    );
  }
  if (r.delivery) {
    parts.push(
      table(
        [
          "Subs",
          "Batch",
          "Backlog/sub",
          "streamhook msg/s",
          "Reference msg/s",
          "Ratio",
          "Passes",
          "Rounds",
          "Cmds/msg",
          "REST req/msg",
        ],
        r.delivery.map((d) => [
          d.subscriptions,
          d.batchSize,
          d.backlog,
          d.perSecond,
          d.reference,
          d.vsReference,
          d.passes,
          d.rounds,
          d.commandsPerMessage,
          d.restRequestsPerMessage,
        ]),
      ),
    );
  }
  const extra: (string | number)[][] = [];
  if (r.latency) {
    extra.push([
      `Latency at ${r.latency.ratePerSecond} msg/s (kick, no manual pass)`,
      `p50 ${round(r.latency.p50Ms, 1)} ms, p99 ${round(r.latency.p99Ms, 1)} ms, max ${round(r.latency.maxMs, 1)} ms; ${r.latency.commandsPerMessage} commands/msg (publish + kick + delivery)`,
    ]);
  }
  if (r.retries) {
    const healthy = r.delivery?.find(
      (d) => d.subscriptions === r.retries?.subscriptions && d.batchSize === 100,
    );
    const extraCost = healthy
      ? ` (healthy: ${healthy.commandsPerMessage}, +${round((r.retries.commandsPerMessage / healthy.commandsPerMessage - 1) * 100, 0)}%)`
      : "";
    extra.push([
      `Retries: ${r.retries.subscriptions} subs x ${r.retries.backlog}, ${r.retries.failureRate * 100}% of requests failing`,
      `${r.retries.perSecond} msg/s, ${r.retries.commandsPerMessage} commands/msg${extraCost}, ${r.retries.passes} passes; dead-lettered ${r.retries.deadLettered}, missing ${r.retries.missing}`,
    ]);
  }
  const headline = r.delivery?.find((d) => d.subscriptions === 10 && d.batchSize === 100);
  if (headline) {
    const perMillion = headline.commandsPerMessage * 1_000_000 * UPSTASH_PER_COMMAND;
    extra.push([
      "Cost per million deliveries (batch 100), Upstash pay-as-you-go",
      `$${round(perMillion, 3)} (${headline.commandsPerMessage} commands/msg at $0.20/100k) vs QStash $${round(1_000_000 * QSTASH_PER_MESSAGE, 2)} ($1/100k messages)`,
    ]);
  }
  if (extra.length > 0) parts.push(table(["Scenario", "Result"], extra));
  return parts.join("\n\n");
}

/** Writes latest.json, latest.md and latest.svg under bench/results; returns the Markdown. */
export async function writeResults(r: Results): Promise<string> {
  const dir = join(import.meta.dirname, "results");
  mkdirSync(dir, { recursive: true });
  const md = markdown(r);
  writeFileSync(
    join(dir, "latest.json"),
    `${JSON.stringify({ ...r, targets: targets(r) }, null, 2)}\n`,
  );
  writeFileSync(join(dir, "latest.md"), `${md}\n`);
  writeFileSync(join(dir, "latest.svg"), chart(r));
  return md;
}
