// How much to take and how to cut it into requests, pure. Everything is bounded in bytes as well
// as by count: a Worker has 128 MB, Upstash refuses requests over 10 MB, and a receiver's body
// limit is usually a few MB.
//
//   readBytesFor  what one run's takes may hold: its share of the invocation's memory (a take
//                 reads in slices sized by the largest entry seen, and stops at that budget
//                 whatever the entries' sizes: lua/take.ts)
//   cutBatches    POST bodies of up to batchSize messages and MAX_BATCH_BYTES; a message larger
//                 than that alone goes as a batch of one, so no message is ever stuck for size

import type { Taken } from "../shared/engine/take.ts";

// The deliverers an invocation runs at once share this much memory for what they have taken:
// each holds up to two takes' worth (one being sent while the next is taken, with the bodies
// built from them), so each take gets half of a deliverer's share. Well under an
// isolate's 128 MB.
export const READ_MEMORY = 48 * 1024 * 1024;

/** What one deliverer's takes may hold when `concurrency` deliverers run at once. */
export const readBytesFor = (concurrency: number) =>
  Math.floor(READ_MEMORY / (2 * Math.max(1, concurrency)));

// The body's JSON around the messages, {"channel":"...","subscription":"...","messages":[...]},
// with both names at their longest (128 characters).
const BODY_BYTES = 302;

/** Cuts entries into request bodies, in order. */
export function cutBatches(
  entries: Taken[],
  limits: { batchSize: number; maxBatchBytes: number },
): Taken[][] {
  const batches: Taken[][] = [];
  let current: Taken[] = [];
  let bytes = BODY_BYTES;
  for (const entry of entries) {
    const size = utf8Bytes(entry.text) + 1;
    const full =
      current.length >= limits.batchSize ||
      (current.length > 0 && bytes + size > limits.maxBatchBytes);
    if (full) {
      batches.push(current);
      current = [];
      bytes = BODY_BYTES;
    }
    current.push(entry);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

const NON_ASCII = /[\u0080-\uffff]/;

/** The UTF-8 bytes of a text, as its body is sent (`length` counts UTF-16 units: up to 3x fewer). */
function utf8Bytes(text: string): number {
  let bytes = text.length;
  // Most texts are ASCII: one native scan (measured: ~8x faster than the loop below).
  if (!NON_ASCII.test(text)) return bytes;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // 2 bytes up to U+07FF, 3 up to U+FFFF; a surrogate pair (2 units) is 4.
    if (unit >= 0x80) bytes += unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 1 : 2;
  }
  return bytes;
}
