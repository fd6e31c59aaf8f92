// Measuring helpers: percentiles, a closed-loop load at a fixed concurrency, waiting, and Redis'
// own command counts around a step.

import type { Redis } from "ioredis";
import { type CommandCounts, countCommands } from "../test/helpers/redis-server.ts";

export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

/** The largest sample (Math.max(...samples) overflows the stack past ~100,000). */
export const maxOf = (samples: number[]) =>
  samples.reduce((max, v) => Math.max(v, max), Number.NEGATIVE_INFINITY);

export interface LoadResult {
  operations: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs `total` operations, `concurrency` at a time (each worker starts its next when done). */
export async function closedLoop(
  total: number,
  concurrency: number,
  operation: (i: number) => Promise<void>,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let i = next++; i < total; i = next++) {
      const t = performance.now();
      await operation(i);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return {
    operations: total,
    seconds,
    perSecond: total / seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
  };
}

/** Waits until `done()` or for `timeoutMs`, whichever comes first; says whether it was done. */
export async function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

export async function waitUntil(what: string, done: () => boolean, timeoutMs: number) {
  if (!(await waitFor(done, timeoutMs)))
    throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

export async function counted<T>(redis: Redis, run: () => Promise<T>) {
  let result: T | undefined;
  const counts: CommandCounts = await countCommands(redis, async () => {
    result = await run();
  });
  return { result: result as T, commands: counts.total, byCommand: counts.byCommand };
}

export const round = (value: number, digits = 2) => Number(value.toFixed(digits));
