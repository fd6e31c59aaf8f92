// The benchmark's report: the targets checked against the figures, a Markdown table (printed,
// and written for docs/performance.md), the raw JSON, and an SVG chart of throughput and latency.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chart } from "./chart.ts";
import {
  COST_TABLE_HEADERS,
  costTable,
  costTargets,
  QSTASH_PER_MESSAGE,
  QUEUES_PER_OPERATION,
  UPSTASH_PER_COMMAND,
} from "./cost-report.ts";
import { round } from "./measure.ts";
import type { Results, Target } from "./results.ts";
import type { SustainedResult } from "./scenarios/sustained.ts";

export function targets(r: Results): Target[] {
  const out: Target[] = [];
  const cell = (s: number, b: number) =>
    r.delivery?.find((d) => d.subscriptions === s && d.batchSize === b);
  const headline = cell(10, 100);
  if (headline) {
    out.push({
      target: "Delivery, batch 100, 10 subscriptions: >= 0.9x the reference pass",
      measured: `${headline.vsReference}x (${headline.perSecond} vs ${headline.reference} msg/s)`,
      met: headline.vsReference >= 0.9,
    });
  }
  if (r.latency) {
    out.push({
      target: "Healthy publish -> receive p50 <= 50 ms, no manual pass",
      measured: `p50 ${round(r.latency.p50Ms, 1)} ms, p99 ${round(r.latency.p99Ms, 1)} ms`,
      met: r.latency.p50Ms <= 50,
    });
  }
  // Issue 21's: a lone message, a steady stream, an idle pass, a single publish, a backlog.
  out.push(...costTargets(r));
  if (r.cost) {
    out.push({
      target: `Batch publish of ${r.cost.batchSize} <= ${r.cost.batchSize + 3} commands`,
      measured: `${r.cost.batchPublishCommands}`,
      met: r.cost.batchPublishCommands <= r.cost.batchSize + 3,
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
  out.push(...queueTargets(r));
  return out;
}

// The Worker as deployed, with its delivery queue and no manual pass.
function queueTargets(r: Results): Target[] {
  const out: Target[] = [];
  const sustained = (s: SustainedResult, limit: number, what: string) => ({
    target: `${what}: ${s.ratePerSecond} msg/s x ${s.subscriptions} subs, p99 publish -> receive <= ${limit} ms`,
    measured: `p50 ${round(s.p50Ms, 0)} ms, p99 ${round(s.p99Ms, 0)} ms, max ${round(s.maxMs, 0)} ms over ${s.seconds} s`,
    met: s.p99Ms <= limit,
  });
  if (r.slow) out.push(sustained(r.slow, 1000, `Receivers taking ${r.slow.delayMs} ms`));
  if (r.fast) out.push(sustained(r.fast, 250, "Fast receivers"));
  if (r.lateness) {
    const l = r.lateness;
    out.push({
      target: "Retries come <= 1 s after they are due (p99), none early, none lost",
      measured: `p50 ${round(l.p50Ms, 0)} ms, p99 ${round(l.p99Ms, 0)} ms, max ${round(l.maxMs, 0)} ms over ${l.retries} retries; early ${l.early}, missing ${l.missing}`,
      met: l.p99Ms <= 1000 && l.early === 0 && l.missing === 0,
    });
  }
  if (r.delayed) {
    const d = r.delayed;
    out.push({
      target: "Delayed messages arrive <= 1 s after their time (p99), none early, none lost",
      measured: `p50 ${round(d.p50Ms, 0)} ms, p99 ${round(d.p99Ms, 0)} ms, max ${round(d.maxMs, 0)} ms over ${d.messages} messages; early ${d.early}, missing ${d.missing}`,
      met: d.p99Ms <= 1000 && d.early === 0 && d.missing === 0,
    });
    out.push({
      target: "A delayed message <= 1.5 commands, published and let in",
      measured: `${d.commandsPerMessage} (publish ${d.publishCommandsPerMessage}, entering ${d.enterCommandsPerMessage})`,
      met: d.commandsPerMessage <= 1.5,
    });
  }
  if (r.fanout) {
    out.push({
      target: `One message to ${r.fanout.subscriptions} subscriptions, all delivered <= 10 s`,
      measured: `${r.fanout.seconds} s (${r.fanout.withinOneSecond} within the first second)`,
      met: r.fanout.seconds <= 10,
    });
  }
  if (r.fanoutLoaded) {
    const f = r.fanoutLoaded;
    out.push({
      target: `One message to ${f.subscriptions} subscriptions while ${f.load.ratePerSecond} msg/s go to ${f.load.subscriptions} subscribers answering in ${f.load.delayMs} ms, all delivered <= 10 s`,
      measured: `${f.seconds} s (${f.withinOneSecond} within the first second)${r.fanout ? `; alone ${r.fanout.seconds} s` : ""}`,
      met: f.seconds <= 10,
    });
  }
  if (r.drain) {
    const d = r.drain;
    out.push({
      target: `Backlog of ${d.messages} x ${d.subscriptions} subs drained by one cron run >= 0.9x back-to-back passes`,
      measured: `${d.ratio}x (${d.cron.perSecond} vs ${d.passes.perSecond} msg/s; ${d.cron.seconds} s vs ${d.passes.seconds} s), repeats ${d.cron.repeats + d.passes.repeats}`,
      met: d.ratio >= 0.9 && d.cron.repeats + d.passes.repeats === 0,
    });
  }
  if (r.retention) {
    const t = r.retention;
    out.push({
      target: `Retention: trimming adds <= 0.01 commands per published message (${t.messages} published, 100 per request)`,
      measured: `${t.trimCommandsPerMessage} (publish in all: ${t.on.publishCommandsPerMessage} with retention, ${t.off.publishCommandsPerMessage} without)`,
      met: t.trimCommandsPerMessage <= 0.01,
    });
    out.push({
      target: `Retention: a channel with maxMessages ${t.maxMessages} stays within 2x of it`,
      measured: `${t.on.length} messages kept of ${t.messages}`,
      met: t.on.length <= 2 * t.maxMessages,
    });
  }
  for (const row of r.pull?.rows ?? []) {
    const direct = `by hand on the bridge (XREADGROUP + XACK) ${row.reference} msg/s = ${row.vsReference}x`;
    const floor = `a Worker request doing nothing caps it at ${row.floorPerSecond} msg/s`;
    const target = `Pull, batch ${row.max}: ${r.pull?.consumers} consumers pulling + acking, >= 0.8x a reference Worker's read + ack`;
    if (row.worker === undefined || row.vsWorker === undefined) {
      // Results from before the reference Worker: the target was not measured.
      out.push({ target, measured: `no reference Worker figure; ${direct}; ${floor}`, met: false });
      continue;
    }
    out.push({
      target,
      measured: `${row.vsWorker}x (${row.perSecond} vs ${row.worker} msg/s, median of ${row.rounds}); ${direct}; ${floor} = ${round(row.floorPerSecond / row.worker)}x; ${row.commandsPerMessage} vs ${row.workerCommandsPerMessage} commands/msg`,
      met: row.vsWorker >= 0.8,
    });
  }
  for (const row of r.cpu?.rows ?? []) {
    out.push({
      target: `Worker CPU, ${row.what}: <= 10 ms per ${row.passes === undefined ? "request" : "batch"} (the free plan's limit per invocation)`,
      measured: `${row.msPerRequest} ms (upper bound, over ${row.requests}; a request doing nothing: ${r.cpu?.floorMsPerRequest} ms)`,
      met: row.msPerRequest <= 10,
    });
  }
  if (r.concurrent) {
    const c = r.concurrent;
    out.push({
      target: `Concurrent push: 1 subscription, batchSize ${c.batchSize}, endpoint ${c.delayMs} ms, ${c.ratePerSecond} msg/s for ${c.seconds} s, default settings: every message delivered, p99 publish -> receipt <= 2 s`,
      measured: `p50 ${round(c.p50Ms, 0)} ms, p99 ${round(c.p99Ms, 0)} ms, max ${round(c.maxMs, 0)} ms; ${c.delivered} of ${c.published} delivered, missing ${c.missing}; max in flight ${c.maxInFlight}`,
      met: c.missing === 0 && c.p99Ms <= 2000,
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
  if (r.loneMessage) {
    const l = r.loneMessage;
    // One message's commands, dearest first: where the lone message's cost goes. Redis names
    // subcommands "xgroup|delconsumer": a bar would end the Markdown cell.
    const each = Object.entries(l.byCommand)
      .sort(([, a], [, b]) => b - a)
      .map(([name, calls]) => `${name.replace("|", " ")} ${round(calls / l.messages, 2)}`)
      .join(", ");
    extra.push([
      `A lone message: ${l.messages} single publishes ${l.intervalMs} ms apart to 1 subscriber (default batchSize), queue bound`,
      `${l.delivered} of ${l.messages} received in ${l.requests} requests, missing ${l.missing}; p50 ${round(l.p50Ms, 0)} ms, p99 ${round(l.p99Ms, 0)} ms, max ${round(l.maxMs, 0)} ms; ${l.commandsPerMessage} commands/msg (${each}); ${l.queueOpsPerMessage} queue ops/msg`,
    ]);
  }
  if (r.steadyStream) {
    const s = r.steadyStream;
    extra.push([
      `A steady stream: ${s.ratePerSecond} msg/s (${s.perPublish} per publish) x ${s.subscriptions} subs at batch ${s.batchSize} answering at once, ${s.seconds} s, queue bound`,
      `${s.delivered} of ${s.published * s.subscriptions} delivered, missing ${s.missing}; p50 ${round(s.p50Ms, 0)} ms, p99 ${round(s.p99Ms, 0)} ms, max ${round(s.maxMs, 0)} ms; ${s.commandsPerDelivery} commands and ${s.queueOpsPerDelivery} queue ops per delivery, publish included; publisher behind ${s.latePublishes} times`,
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
  for (const [name, s] of [
    ["Busy subscribers", r.slow],
    ["Fast subscribers", r.fast],
  ] as const) {
    if (!s) continue;
    extra.push([
      `${name}: ${s.ratePerSecond} msg/s (${s.messagesPerPublish} per publish) x ${s.subscriptions} subs answering in ${s.delayMs} ms, ${s.seconds} s, queue bound`,
      `${s.delivered} delivered; p50 ${round(s.p50Ms, 0)} ms, p99 ${round(s.p99Ms, 0)} ms, max ${round(s.maxMs, 0)} ms; ${s.commandsPerMessage} commands/msg, ${s.queueOpsPerMessage} queue ops/msg; publisher behind ${s.latePublishes} times`,
    ]);
  }
  if (r.lateness) {
    const l = r.lateness;
    extra.push([
      `Retry lateness: ${l.subscriptions} subs, half the requests failing, queue bound`,
      `${l.retries} retries of ${l.messages} messages; late p50 ${round(l.p50Ms, 0)} ms, p99 ${round(l.p99Ms, 0)} ms; ${l.queueOpsPerMessage} queue ops/msg`,
    ]);
  }
  if (r.delayed) {
    const d = r.delayed;
    extra.push([
      `Delayed messages: ${d.messages}, 100 per publish, due ${d.minDelayMs / 1000}-${d.maxDelayMs / 1000} s ahead, queue bound`,
      `late p50 ${round(d.p50Ms, 0)} ms, p99 ${round(d.p99Ms, 0)} ms, max ${round(d.maxMs, 0)} ms (receipt after notBefore); ${d.commandsPerMessage} commands/msg (publish ${d.publishCommandsPerMessage} + entering ${d.enterCommandsPerMessage}, no subscriber), ${d.queueOpsPerMessage} queue ops/msg`,
    ]);
  }
  if (r.fanout) {
    extra.push([
      `Fan-out: one message to ${r.fanout.subscriptions} subscriptions, queue bound`,
      `all delivered in ${r.fanout.seconds} s; ${r.fanout.queueOpsPerMessage} queue ops per delivery`,
    ]);
  }
  if (r.fanoutLoaded) {
    const { load, ...f } = r.fanoutLoaded;
    extra.push([
      `Fan-out: one message to ${f.subscriptions} subscriptions beside ${load.ratePerSecond} msg/s (${load.perPublish} per publish) to ${load.subscriptions} subs answering in ${load.delayMs} ms, queue bound`,
      `all delivered in ${f.seconds} s (${f.withinOneSecond} within the first second); the load, started ${load.warmupSeconds} s before: ${load.published} messages, ${load.delivered} of ${load.published * load.subscriptions} deliveries, p50 ${round(load.p50Ms, 0)} ms, p99 ${round(load.p99Ms, 0)} ms, max ${round(load.maxMs, 0)} ms; publisher behind ${load.latePublishes} times`,
    ]);
  }
  if (r.drain) {
    for (const d of [r.drain.passes, r.drain.cron]) {
      extra.push([
        `Backlog ${r.drain.messages} x ${r.drain.subscriptions} subs, ${d.how === "cron" ? "one cron run, queue bound" : "back-to-back passes, no queue"}`,
        `${d.perSecond} msg/s (${d.seconds} s); ${d.commandsPerMessage} commands/msg, ${d.queueOpsPerMessage} queue ops/msg; repeats ${d.repeats}`,
      ]);
    }
  }
  if (r.retention) {
    for (const row of [r.retention.off, r.retention.on]) {
      extra.push([
        `Retention ${row.retention}: ${r.retention.messages} messages published (100 per request), delivered as they come`,
        `${row.length} kept, ${row.memoryBytes} bytes of stream (${row.bytesPerMessage} per message published); ${row.publishCommandsPerMessage} publish commands/msg, of which trimming ${row.trimCommandsPerMessage}`,
      ]);
    }
  }
  const queued = r.fast ?? r.slow;
  if (queued) {
    const redis = queued.commandsPerMessage * 1_000_000 * UPSTASH_PER_COMMAND;
    const queue = queued.queueOpsPerMessage * 1_000_000 * QUEUES_PER_OPERATION;
    extra.push([
      "Cost per million deliveries with the queue (fast subscribers above): Upstash + Queues",
      `$${round(redis + queue, 4)} ($${round(redis, 4)} for ${queued.commandsPerMessage} commands/msg + $${round(queue, 4)} for ${queued.queueOpsPerMessage} queue ops/msg at $0.40/M)`,
    ]);
  }
  if (r.concurrent) {
    const c = r.concurrent;
    extra.push([
      `Concurrent push: ${c.ratePerSecond} msg/s (1 per publish) x 1 sub at batch ${c.batchSize} answering in ${c.delayMs} ms, ${c.seconds} s, default settings, queue bound`,
      `${c.delivered} of ${c.published} delivered within ${round(c.graceMs / 1000, 0)} s of the last publish, missing ${c.missing}; p50 ${round(c.p50Ms, 0)} ms, p99 ${round(c.p99Ms, 0)} ms, max ${round(c.maxMs, 0)} ms; max in flight ${c.maxInFlight}; ${c.commandsPerMessage} commands/msg; publisher behind ${c.latePublishes} times`,
    ]);
  }
  if (r.ordered) {
    const o = r.ordered;
    const plain = o.cells.find((c) => c.what === "unordered")?.perSecond ?? 0;
    for (const c of o.cells) {
      extra.push([
        `Ordered delivery: ${c.what}, ${c.messages} messages at batch ${o.batchSize}, endpoint ${o.delayMs} ms, by passes`,
        `${c.perSecond} msg/s${plain > 0 && c.what !== "unordered" ? ` (${round(c.perSecond / plain, 2)}x unordered)` : ""} in ${c.passes} passes; ${c.commandsPerMessage} commands/msg`,
      ]);
    }
  }
  if (extra.length > 0) parts.push(table(["Scenario", "Result"], extra));
  const cost = costTable(r);
  if (cost) {
    parts.push(
      "Cost per million deliveries: commands at Upstash pay-as-you-go ($0.20 per 100,000, every command a script runs included), then with the delivery queue's operations at Cloudflare Queues' $0.40 per million (a queued task is a write, a read and a delete), beside QStash's $1 per 100,000 messages.",
    );
    parts.push(table(COST_TABLE_HEADERS, cost));
  }
  if (r.cpu) {
    parts.push(
      `Worker CPU: user + system time of the workerd process running the Worker (/proc), over sequential requests of one kind, less as many requests doing nothing, per request (push: per batch, less one request per delivery pass). An upper bound: the runtime's own work for a request is in it. Resolution ${r.cpu.tickMs} ms over each reading.`,
    );
    parts.push(
      table(
        [
          "Worker CPU (workerd process, upper bound)",
          "ms each",
          "Over",
          "Free plan per invocation",
        ],
        [
          ["A request doing nothing (taken off the rows below)", r.cpu.floorMsPerRequest, "", ""],
          ...r.cpu.rows.map((row) => [
            row.what,
            row.msPerRequest,
            row.passes === undefined
              ? `${row.requests} requests`
              : `${row.requests} batches in ${row.passes} ${row.passes === 1 ? "pass" : "passes"}: ${round((row.msPerRequest * row.requests) / row.passes + (r.cpu?.floorMsPerRequest ?? 0), 0)} ms per pass`,
            "10 ms",
          ]),
        ],
      ),
    );
  }
  return parts.join("\n\n");
}

/** Writes latest.json, latest.md and latest.svg in `dir`; returns the Markdown. */
export async function writeResults(r: Results, dir: string): Promise<string> {
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
