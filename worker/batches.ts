// How much to take and how to cut it into requests, pure. Everything is bounded in bytes as well
// as by count: a Worker has 128 MB, Upstash refuses requests over 10 MB, and a receiver's body
// limit is usually a few MB.
//
//   takeCount     how many entries the next take may ask for: `batches` requests' worth, never
//                 more than the run's share of memory if every entry were as large as the largest
//                 seen so far (or as MAX_MESSAGE_BYTES allows, before any), in whole batches
//                 when one fits; the take itself stops at that byte budget whatever the
//                 entries' sizes (lua/take.ts)
//   cutBatches    POST bodies of up to batchSize messages and MAX_BATCH_BYTES; a message larger
//                 than that alone goes as a batch of one, so no message is ever stuck for size

import type { Taken } from "../shared/engine/take.ts";

// The deliverers an invocation runs at once share this much memory for what they have taken
// (held from its take until its request ends, with the bodies built from it): well under an
// isolate's 128 MB.
export const READ_MEMORY = 48 * 1024 * 1024;

/** What one deliverer's takes may hold when `concurrency` deliverers run at once. */
export const readBytesFor = (concurrency: number) =>
  Math.floor(READ_MEMORY / Math.max(1, concurrency));

export interface TakeLimits {
  batchSize: number;
  /** Requests' worth to take. */
  batches: number;
  /** The largest entry seen so far in this run, or the largest a message may be. */
  largestBytes: number;
  /** Bytes the take may hold (readBytesFor). */
  readBytes: number;
}

/**
 * How many entries the next take may ask for; at least 1. Whole batches when one fits: a take
 * cut short by bytes would otherwise send a batch smaller than batchSize while more wait.
 */
export function takeCount(l: TakeLimits): number {
  const byBytes = Math.floor(l.readBytes / Math.max(1, l.largestBytes));
  const count = Math.min(l.batchSize * l.batches, byBytes);
  if (count >= l.batchSize) return count - (count % l.batchSize);
  return Math.max(1, count);
}

// The body's JSON around the messages: {"channel":...,"subscription":...,"messages":[...]}.
const BODY_BYTES = 300;

/** Cuts entries into request bodies, in order. */
export function cutBatches(
  entries: Taken[],
  limits: { batchSize: number; maxBatchBytes: number },
): Taken[][] {
  const batches: Taken[][] = [];
  let current: Taken[] = [];
  let bytes = BODY_BYTES;
  for (const entry of entries) {
    const full =
      current.length >= limits.batchSize ||
      (current.length > 0 && bytes + entry.text.length + 1 > limits.maxBatchBytes);
    if (full) {
      batches.push(current);
      current = [];
      bytes = BODY_BYTES;
    }
    current.push(entry);
    bytes += entry.text.length + 1;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}
