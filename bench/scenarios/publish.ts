// 1. Publish: messages/s and p50/p99 latency through the Worker, single and batch publish, at a
// few concurrencies; baseline: raw XADD through the same bridge at the same concurrency (one HTTP
// request per XADD: auto-pipelining off, or the baseline would batch what the API cannot). The
// floor (the Worker answering a request that does nothing) shows what the local runtime itself
// costs per request, apart from anything streamhook does.

import { Redis as UpstashRedis } from "@upstash/redis";
import { closedLoop, type LoadResult } from "../measure.ts";
import type { BenchStack } from "../stack.ts";

export interface PublishRow {
  concurrency: number;
  single: LoadResult;
  baseline: LoadResult;
  /** The Worker answering a request that touches nothing (a 404): the local runtime's floor. */
  floor: LoadResult;
  /** Batches of `batchSize` messages; perSecond counts messages. */
  batch: LoadResult & { batchSize: number };
  /** single.perSecond / baseline.perSecond (target >= 0.5). */
  vsBaseline: number;
  /** batch messages/s over single messages/s (target >= 20 at batch 100). */
  batchGain: number;
}

export async function publishScenario(
  stack: BenchStack,
  options: { concurrencies: number[]; requests: number; batchSize: number },
): Promise<PublishRow[]> {
  const raw = new UpstashRedis({
    url: stack.bridgeUrl,
    token: "bench-bridge-token",
    automaticDeserialization: false,
    enableTelemetry: false,
    enableAutoPipelining: false,
  });
  const data = JSON.stringify({ orderId: 42, note: "a typical small event" });
  const rows: PublishRow[] = [];
  for (const c of options.concurrencies) {
    const channel = `pub-${c}`;
    // Warm the path (script cache, connections) so the first request is not what is measured.
    await stack.kicked.json("POST", `/v1/channels/${channel}/messages`, { data: 0 });
    const single = await closedLoop(options.requests, c, async () => {
      const res = await stack.kicked.call("POST", `/v1/channels/${channel}/messages`, {
        data: { orderId: 42, note: "a typical small event" },
        type: "order.created",
      });
      if (res.status !== 201) throw new Error(`publish: ${res.status}`);
      await res.arrayBuffer();
    });
    const floor = await closedLoop(options.requests, c, async () => {
      const res = await fetch(`${stack.kicked.base}/nothing-here`);
      await res.arrayBuffer();
    });
    const key = stack.keys.channel(`raw-${c}`);
    const baseline = await closedLoop(options.requests, c, async () => {
      await raw.xadd(key, "*", { t: "order.created", d: data });
    });
    const batches = Math.max(c, Math.round(options.requests / 10));
    const messages = Array.from({ length: options.batchSize }, (_, i) => ({
      data: { orderId: i, note: "a typical small event" },
      type: "order.created",
    }));
    const batchLoad = await closedLoop(batches, c, async () => {
      const res = await stack.kicked.call("POST", `/v1/channels/${channel}/messages`, {
        messages,
      });
      if (res.status !== 201) throw new Error(`batch publish: ${res.status}`);
      await res.arrayBuffer();
    });
    const batch = {
      ...batchLoad,
      perSecond: batchLoad.perSecond * options.batchSize,
      batchSize: options.batchSize,
    };
    rows.push({
      concurrency: c,
      single,
      baseline,
      floor,
      batch,
      vsBaseline: single.perSecond / baseline.perSecond,
      batchGain: batch.perSecond / single.perSecond,
    });
  }
  return rows;
}
