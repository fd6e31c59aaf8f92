// Pull throughput: a backlog pulled and acked by 4 consumers of one pull subscription, over HTTP
// through the Worker (wrangler dev), against two references on the same backlog, same bridge,
// same batch size n, same 4-way concurrency, same client settings:
//
//   Worker   the reference Worker (bench/reference-worker/) in the same workerd: each consumer
//            reads (one request, one XREADGROUP COUNT n) and acks (one request, one XACK), so it
//            makes the same hops as a pull and an ack; the target's baseline
//   direct   XREADGROUP + XACK with @upstash/redis from this process, no Worker in between
//
// Each consumer pulls as a consumer should: the ids of one batch ride on its next pull (`ack`),
// so a batch is one request, where the references make two (an ack and the next read).
// Each batch size runs `rounds` rounds on a fresh backlog, streamhook and the references in
// turn, the order reversed every other round (the machine's other load shifts between them);
// the medians are reported. Beside them, the local runtime's floor: a Worker request that does
// nothing, at the same concurrency, times n is the most messages per second any pull could reach
// here, whatever it did inside.

import { closedLoop, counted, round } from "../measure.ts";
import type { Api, BenchStack } from "../stack.ts";

export interface PullRow {
  /** Messages per pull and per XREADGROUP. */
  max: number;
  rounds: number;
  /** Medians over the rounds. */
  perSecond: number;
  /** The reference Worker's read + ack, msg/s (absent in results from before it). */
  worker?: number;
  /** perSecond / worker (target >= 0.8). */
  vsWorker?: number;
  /** XREADGROUP + XACK by hand, directly on the bridge. */
  reference: number;
  vsReference: number;
  /** Worker requests doing nothing per second at the same concurrency, times `max`. */
  floorPerSecond: number;
  /** Redis commands per message pulled and acked (first round). */
  commandsPerMessage: number;
  workerCommandsPerMessage?: number;
  referenceCommandsPerMessage: number;
}

export interface PullResult {
  messages: number;
  consumers: number;
  rows: PullRow[];
}

type Entries = [string, [string, string[]][]][] | null;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

export async function pullScenario(
  stack: BenchStack,
  o: { messages: number; consumers: number; batches: number[]; rounds: number },
): Promise<PullResult> {
  const floor = await closedLoop(400, o.consumers, async () => {
    await (await fetch(`${stack.manual.base}/nothing-here`)).arrayBuffer();
  });
  const worker = await stack.referenceWorker();
  const rows: PullRow[] = [];
  let channels = 0;
  for (const max of o.batches) {
    const runs: Record<Side, Run>[] = [];
    for (let r = 0; r < o.rounds; r++) {
      const channel = `pull-bench-${channels++}`;
      const stream = await backlog(stack, channel, o.messages);
      const sides: Record<Side, () => Promise<Run>> = {
        pull: () => pullAll(stack, channel, o.consumers, max),
        worker: () => workerAll(stack, worker, stream, o.consumers, max),
        reference: () => referenceAll(stack, stream, o.consumers, max),
      };
      // pull first and direct last, then the other way round: streamhook and each reference
      // take turns going first.
      const order: Side[] =
        r % 2 === 0 ? ["pull", "worker", "reference"] : ["reference", "worker", "pull"];
      const run = {} as Record<Side, Run>;
      for (const side of order) run[side] = await sides[side]();
      for (const side of order) {
        if (run[side].taken !== o.messages) {
          throw new Error(`${side} took ${run[side].taken} of ${o.messages}`);
        }
      }
      runs.push(run);
    }
    const rate = (run: Run) => o.messages / (run.ms / 1000);
    const perMessage = (run: Run) => round(run.commands / o.messages, 4);
    rows.push({
      max,
      rounds: o.rounds,
      perSecond: round(median(runs.map((x) => rate(x.pull))), 0),
      worker: round(median(runs.map((x) => rate(x.worker))), 0),
      vsWorker: round(median(runs.map((x) => rate(x.pull) / rate(x.worker)))),
      reference: round(median(runs.map((x) => rate(x.reference))), 0),
      vsReference: round(median(runs.map((x) => rate(x.pull) / rate(x.reference)))),
      floorPerSecond: round(floor.perSecond * max, 0),
      commandsPerMessage: perMessage(runs[0]!.pull),
      workerCommandsPerMessage: perMessage(runs[0]!.worker),
      referenceCommandsPerMessage: perMessage(runs[0]!.reference),
    });
  }
  return { messages: o.messages, consumers: o.consumers, rows };
}

type Side = "pull" | "worker" | "reference";

interface Run {
  ms: number;
  taken: number;
  commands: number;
}

/** A pull subscription and the references' groups on a channel holding `messages`. */
async function backlog(stack: BenchStack, channel: string, messages: number) {
  const api = stack.manual;
  await api.json("POST", `/v1/channels/${channel}/subscriptions`, {
    name: "work",
    mode: "pull",
    from: "earliest",
  });
  for (let i = 0; i < messages; i += 1000) {
    const n = Math.min(1000, messages - i);
    const batch = Array.from({ length: n }, (_, j) => ({ type: "t", data: { n: i + j } }));
    await api.json("POST", `/v1/channels/${channel}/messages`, { messages: batch });
  }
  const stream = stack.keys.channel(channel);
  await stack.redis.xgroup("CREATE", stream, "reference", "0");
  await stack.redis.xgroup("CREATE", stream, "reference-worker", "0");
  return stream;
}

async function pullAll(stack: BenchStack, channel: string, consumers: number, max: number) {
  const path = `/v1/channels/${channel}/subscriptions/work/pull`;
  let taken = 0;
  const { result, commands } = await counted(stack.redis, async () => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: consumers }, async (_, c) => {
        let ack: string[] = [];
        for (;;) {
          const { messages } = await stack.manual.json<{ messages: { id: string }[] }>(
            "POST",
            path,
            { max, consumer: `c${c}`, visibilityTimeoutMs: 60_000, ack },
          );
          // The last pull acks the last batch and finds nothing: every message is acked.
          if (messages.length === 0) return;
          taken += messages.length;
          ack = messages.map((m) => m.id);
        }
      }),
    );
    return performance.now() - started;
  });
  return { ms: result, taken, commands };
}

async function referenceAll(stack: BenchStack, stream: string, consumers: number, max: number) {
  let taken = 0;
  const { result, commands } = await counted(stack.redis, async () => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: consumers }, async (_, c) => {
        for (;;) {
          const reply = (await stack.rest.xreadgroup("reference", `c${c}`, stream, ">", {
            count: max,
          })) as unknown as Entries;
          const entries = reply?.[0]?.[1] ?? [];
          if (entries.length === 0) return;
          taken += entries.length;
          await stack.rest.xack(
            stream,
            "reference",
            entries.map(([id]) => id),
          );
        }
      }),
    );
    return performance.now() - started;
  });
  return { ms: result, taken, commands };
}

/** Each consumer reads a batch through the reference Worker, then acks it there. */
async function workerAll(
  stack: BenchStack,
  worker: Api,
  stream: string,
  consumers: number,
  max: number,
) {
  const group = "reference-worker";
  let taken = 0;
  const { result, commands } = await counted(stack.redis, async () => {
    const started = performance.now();
    await Promise.all(
      Array.from({ length: consumers }, async (_, c) => {
        for (;;) {
          const { entries } = await worker.json<{ entries: [string, string[]][] }>(
            "POST",
            "/read",
            { stream, group, consumer: `c${c}`, count: max },
          );
          if (entries.length === 0) return;
          taken += entries.length;
          await worker.json("POST", "/ack", { stream, group, ids: entries.map(([id]) => id) });
        }
      }),
    );
    return performance.now() - started;
  });
  return { ms: result, taken, commands };
}
