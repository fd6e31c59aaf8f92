// 2. Delivery: 1 channel x S subscriptions x a backlog of N messages each, at a batch size:
// delivered messages/s until every receiver has everything, driving POST /v1/deliver pass after
// pass. Baseline: the reference pass (reference.ts) on the same backlog, same bridge, same
// receivers, run right after in the same process. Redis' command counts and the bridge's REST
// requests are taken around streamhook's run.

import { counted, round as roundTo } from "../measure.ts";
import { referencePass } from "../reference.ts";
import type { BenchStack } from "../stack.ts";

export interface DeliveryRow {
  subscriptions: number;
  batchSize: number;
  backlog: number;
  delivered: number;
  perSecond: number;
  reference: number;
  /** perSecond / reference (target >= 0.9 at batch 100, 10 subscriptions). */
  vsReference: number;
  passes: number;
  /** Rounds run; the row is the median one. */
  rounds: number;
  commandsPerMessage: number;
  restRequestsPerMessage: number;
}

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const PASS_CONCURRENCY = 6; // the Worker's default

/**
 * Runs the cell `rounds` times, streamhook and reference alternating, each round on a fresh
 * backlog, and reports the median round by ratio (one noisy second on a shared 2-core machine
 * should not decide a target).
 */
export async function deliveryCell(
  stack: BenchStack,
  subscriptions: number,
  batchSize: number,
  backlog: number,
  options: { rounds: number; timeoutMs: number },
): Promise<DeliveryRow> {
  const rows: DeliveryRow[] = [];
  for (let round = 0; round < options.rounds; round++) {
    rows.push(
      await deliveryRound(stack, subscriptions, batchSize, backlog, round, options.timeoutMs),
    );
  }
  rows.sort((a, b) => a.vsReference - b.vsReference);
  return { ...rows[Math.floor(rows.length / 2)]!, rounds: rows.length };
}

async function deliveryRound(
  stack: BenchStack,
  subscriptions: number,
  batchSize: number,
  backlog: number,
  round: number,
  timeoutMs: number,
): Promise<DeliveryRow> {
  const channel = `deliver-${subscriptions}-${batchSize}-${backlog}-${round}`;
  const stream = stack.keys.channel(channel);
  const ours: string[] = [];
  const refs: { group: string; url: string; secret: string }[] = [];
  for (let i = 0; i < subscriptions; i++) {
    const name = `s${i}`;
    const url = stack.receivers.add(`${channel}-${name}`, SECRET);
    ours.push(`${channel}-${name}`);
    await stack.manual.json("POST", `/v1/channels/${channel}/subscriptions`, {
      name,
      url,
      batchSize,
      secret: SECRET,
    });
    const group = `ref${i}`;
    await stack.redis.xgroup("CREATE", stream, group, "$");
    refs.push({ group, url: stack.receivers.add(`${channel}-${group}`, SECRET), secret: SECRET });
  }
  for (let i = 0; i < backlog; i += 1000) {
    const messages = Array.from({ length: Math.min(1000, backlog - i) }, (_, j) => ({
      data: { n: i + j, note: "a typical small event" },
      type: "order.created",
    }));
    await stack.manual.json("POST", `/v1/channels/${channel}/messages`, { messages });
  }

  const total = subscriptions * backlog;
  const received = (names: string[]) =>
    names.reduce((sum, name) => sum + stack.receivers.received(name), 0);
  const restBefore = await stack.bridgeStats();
  let passes = 0;
  const started = performance.now();
  const { commands } = await counted(stack.redis, async () => {
    const deadline = Date.now() + timeoutMs;
    while (received(ours) < total) {
      if (Date.now() > deadline) throw new Error(`${channel}: not delivered in ${timeoutMs} ms`);
      await stack.manual.json("POST", "/v1/deliver");
      passes++;
    }
  });
  const seconds = (performance.now() - started) / 1000;
  const restAfter = await stack.bridgeStats();

  const refStarted = performance.now();
  await referencePass(stack.rest, stream, channel, refs, batchSize, PASS_CONCURRENCY);
  const refSeconds = (performance.now() - refStarted) / 1000;
  const refNames = refs.map((r) => `${channel}-${r.group}`);
  if (received(refNames) !== total) throw new Error(`${channel}: reference missed messages`);

  return {
    subscriptions,
    batchSize,
    backlog,
    delivered: total,
    perSecond: roundTo(total / seconds, 0),
    reference: roundTo(total / refSeconds, 0),
    vsReference: roundTo(total / seconds / (total / refSeconds)),
    passes,
    rounds: 1,
    commandsPerMessage: roundTo(commands / total, 4),
    restRequestsPerMessage: roundTo((restAfter.requests - restBefore.requests) / total, 4),
  };
}
