// Issue 21's cost figures in the report: the targets on Redis commands (a lone message, a steady
// stream, a backlog at batch 100 and 1, a single publish, an idle pass) and the table of what
// each costs per million deliveries, on Upstash pay-as-you-go with and without the delivery
// queue's operations, beside QStash. Every command is billed, those inside scripts included:
// the scenarios count Redis' own commandstats, never the client's calls.

import { round } from "./measure.ts";
import type { Results, Target } from "./results.ts";
import type { DeliveryRow } from "./scenarios/delivery.ts";

/** Upstash pay-as-you-go: $0.20 per 100,000 commands. */
export const UPSTASH_PER_COMMAND = 0.2 / 100_000;
/** QStash: $1 per 100,000 messages, $10 per million. */
export const QSTASH_PER_MESSAGE = 1 / 100_000;
/** Cloudflare Queues: $0.40 per million operations (a queued task: a write, a read, a delete). */
export const QUEUES_PER_OPERATION = 0.4 / 1_000_000;

const MILLION = 1_000_000;
const QSTASH_PER_MILLION = MILLION * QSTASH_PER_MESSAGE;

/** $ per million of something that takes `commands` and `queueOps` each. */
export function perMillion(commands: number, queueOps = 0): number {
  return MILLION * (commands * UPSTASH_PER_COMMAND + queueOps * QUEUES_PER_OPERATION);
}

const dollars = (value: number) => `$${round(value, 4)}`;

// The delivery table's rows judged for a backlog target: 1 and 10 subscriptions, as the issue
// measures them; the 100-subscription row is shown beside them, not judged.
const JUDGED_SUBSCRIPTIONS = [1, 10];

function backlogRows(r: Results, batchSize: number) {
  const rows = r.delivery?.filter((d) => d.batchSize === batchSize) ?? [];
  const judged = rows.filter((d) => JUDGED_SUBSCRIPTIONS.includes(d.subscriptions));
  const others = rows.filter((d) => !JUDGED_SUBSCRIPTIONS.includes(d.subscriptions));
  const worst = judged.reduce<DeliveryRow | undefined>(
    (max, d) => (max === undefined || d.commandsPerMessage > max.commandsPerMessage ? d : max),
    undefined,
  );
  return { judged, others, worst };
}

const cells = (rows: DeliveryRow[]) =>
  rows.map((d) => `${d.commandsPerMessage} (${d.subscriptions} subs)`).join(", ");

/** Issue 21's targets, those the run measured. */
export function costTargets(r: Results): Target[] {
  const out: Target[] = [];
  const lone = r.loneMessage;
  if (lone) {
    const redis = perMillion(lone.commandsPerMessage);
    const all = perMillion(lone.commandsPerMessage, lone.queueOpsPerMessage);
    out.push({
      target: `A lone message, publish to receipt, one subscriber: <= 5 commands and <= ${dollars(QSTASH_PER_MILLION)} per million (QStash)`,
      measured: `${lone.commandsPerMessage} commands + ${lone.queueOpsPerMessage} queue ops per message = ${dollars(all)} per million (Upstash ${dollars(redis)} + Queues ${dollars(all - redis)}); ${lone.delivered} of ${lone.messages} received, missing ${lone.missing}`,
      met: lone.missing === 0 && lone.commandsPerMessage <= 5 && all <= QSTASH_PER_MILLION,
    });
  }
  const steady = r.steadyStream;
  if (steady) {
    const s = steady;
    out.push({
      target: `A steady stream, ${s.ratePerSecond} msg/s in publishes of ${s.perPublish} to ${s.subscriptions} subscribers at batchSize ${s.batchSize} for ${s.seconds} s: <= 0.1 commands per delivery, publish included`,
      measured: `${s.commandsPerDelivery} commands + ${s.queueOpsPerDelivery} queue ops per delivery; ${s.delivered} of ${s.published * s.subscriptions} delivered, missing ${s.missing}`,
      met: s.missing === 0 && s.commandsPerDelivery <= 0.1,
    });
  }
  if (r.cost) {
    const at1000 = r.cost.idlePass.find((p) => p.subscriptions === 1000);
    out.push({
      target: "Idle pass over 1,000 subscriptions = 1 command",
      measured: r.cost.idlePass.map((p) => `${p.commands} at ${p.subscriptions}`).join(", "),
      met: at1000?.commands === 1,
    });
    out.push({
      target: "Single publish <= 2 commands in all, kick included (no subscriptions)",
      measured: `${r.cost.publishCommands}`,
      met: r.cost.publishCommands <= 2,
    });
  }
  for (const [batch, limit] of [
    [100, 0.02],
    [1, 1.5],
  ] as const) {
    const { judged, others, worst } = backlogRows(r, batch);
    if (worst === undefined) continue;
    const shown = others.length > 0 ? `; not judged: ${cells(others)}` : "";
    out.push({
      target: `A backlog at batch ${batch}: <= ${limit} commands per message (the delivery table, the worst of 1 and 10 subscriptions)`,
      measured: `${cells(judged)}${shown}`,
      met: worst.commandsPerMessage <= limit,
    });
  }
  return out;
}

/**
 * The "Cost per million deliveries" table (Markdown rows, no header), or null when the run has
 * none of its figures.
 */
export function costTable(r: Results): (string | number)[][] | null {
  const rows: (string | number)[][] = [];
  const qstash = dollars(QSTASH_PER_MILLION);
  // queueOps: a number when the run counted them, else why there is none.
  const row = (what: string, commands: number, queueOps: number | string) => [
    what,
    commands,
    typeof queueOps === "number" ? queueOps : `- (${queueOps})`,
    dollars(perMillion(commands)),
    typeof queueOps === "number" ? dollars(perMillion(commands, queueOps)) : "-",
    qstash,
  ];
  if (r.loneMessage) {
    const l = r.loneMessage;
    rows.push(
      row(
        `A lone message, publish to receipt, 1 subscriber (${l.messages} single publishes ${l.intervalMs} ms apart)`,
        l.commandsPerMessage,
        l.queueOpsPerMessage,
      ),
    );
  }
  if (r.steadyStream) {
    const s = r.steadyStream;
    rows.push(
      row(
        `A steady stream: ${s.ratePerSecond} msg/s in publishes of ${s.perPublish}, ${s.subscriptions} subs at batch ${s.batchSize}, ${s.seconds} s (publish included)`,
        s.commandsPerDelivery,
        s.queueOpsPerDelivery,
      ),
    );
  }
  for (const batch of [100, 1]) {
    const { worst } = backlogRows(r, batch);
    if (worst === undefined) continue;
    rows.push(
      row(
        `A backlog at batch ${batch}, ${worst.subscriptions} subs (the worst of the delivery table's 1 and 10; publish not included)`,
        worst.commandsPerMessage,
        "delivered by passes, no queue",
      ),
    );
  }
  if (r.cost) {
    rows.push(
      row(
        "A single publish, no subscriptions (per million published)",
        r.cost.publishCommands,
        "not counted",
      ),
    );
  }
  return rows.length > 0 ? rows : null;
}

export const COST_TABLE_HEADERS = [
  "Cost per million deliveries",
  "Commands each",
  "Queue ops each",
  "Upstash pay-as-you-go",
  "With the queue's operations",
  "QStash",
];
