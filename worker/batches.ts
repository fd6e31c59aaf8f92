// How much to read and how to cut it into requests, pure. Everything is bounded in bytes as well
// as by count: a Worker has 128 MB, Upstash refuses requests over 10 MB, and a receiver's body
// limit is usually a few MB.
//
//   readCount     how many entries the next read (or claim) may take: up to READ_BATCHES batches,
//                 never past the pending limit, never more than readBytes if every entry were as
//                 large as the largest seen so far (or as MAX_MESSAGE_BYTES allows, before any)
//   cutBatches    POST bodies of up to batchSize messages and MAX_BATCH_BYTES; a message larger
//                 than that alone goes as a batch of one, so no message is ever stuck for size

import type { UnitEntry } from "./entries.ts";

/** Upstash refuses XREADGROUP when a consumer's pending entries plus COUNT would pass 1,000. */
export const PENDING_LIMIT = 1000;

// Up to 4 batches per read (measured: a quarter of the round trips and commands per message at
// batch size 100, +40% throughput), at most 400 messages, at most `readBytes` of data. Two reads
// are in memory at once (one read ahead), and each visit running at once holds both; so the
// bytes a read may take come from the visits an invocation runs at once (readBytesFor), and
// all of them together stay at READ_MEMORY, well under an isolate's 128 MB with room for the
// bodies built from them. Six visits at once (a pass) read up to 4 MiB each.
const READ_BATCHES = 4;
const READ_MESSAGES = 400;
export const READ_MEMORY = 48 * 1024 * 1024;

/** What one read may take when `concurrency` visits run at once. */
export const readBytesFor = (concurrency: number) =>
  Math.floor(READ_MEMORY / (2 * Math.max(1, concurrency)));

export interface ReadLimits {
  batchSize: number;
  /** Entries of the unit's consumer that are pending now (read, claimed or failed, not acked). */
  pending: number;
  /** The largest entry seen so far in this visit, or the largest a message may be. */
  largestBytes: number;
  /** Bytes one read may take (readBytesFor). */
  readBytes: number;
}

/** How many entries the next read may take; 0 when the pending list is full. */
export function readCount(l: ReadLimits): number {
  const byBytes = Math.floor(l.readBytes / Math.max(1, l.largestBytes));
  const byCount = Math.max(l.batchSize, Math.min(READ_MESSAGES, l.batchSize * READ_BATCHES));
  const wanted = Math.max(1, Math.min(byCount, byBytes));
  return Math.max(0, Math.min(wanted, PENDING_LIMIT - l.pending));
}

/** The largest entry among these and what was seen before. */
export const largest = (entries: UnitEntry[], before: number) =>
  entries.reduce((max, e) => Math.max(max, e.bytes), before);

/**
 * Cuts entries into request bodies. With `complete`, the last batch goes out even when it is not
 * full; otherwise a last batch that is not full is handed back to wait for more entries.
 */
export function cutBatches(
  entries: UnitEntry[],
  limits: { batchSize: number; maxBatchBytes: number },
  complete: boolean,
): { batches: UnitEntry[][]; rest: UnitEntry[] } {
  const batches: UnitEntry[][] = [];
  let current: UnitEntry[] = [];
  let bytes = 0;
  for (const entry of entries) {
    const full =
      current.length >= limits.batchSize ||
      (current.length > 0 && bytes + entry.bytes > limits.maxBatchBytes);
    if (full) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(entry);
    bytes += entry.bytes;
  }
  if (current.length === 0) return { batches, rest: [] };
  const fullByBytes = bytes >= limits.maxBatchBytes;
  if (complete || current.length >= limits.batchSize || fullByBytes) {
    return { batches: [...batches, current], rest: [] };
  }
  return { batches, rest: current };
}
