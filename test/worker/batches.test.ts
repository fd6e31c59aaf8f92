import { describe, expect, it } from "vitest";
import {
  cutBatches,
  PENDING_LIMIT,
  READ_MEMORY,
  readBytesFor,
  readCount,
} from "../../worker/batches.ts";
import type { UnitEntry } from "../../worker/entries.ts";

const entry = (n: number, bytes = 100): UnitEntry => ({
  entryId: `1-${n}`,
  message: { id: `1-${n}`, type: null, data: "1", publishedAt: "1970-01-01T00:00:00.001Z" },
  attempt: 1,
  bytes,
});
const entries = (count: number, bytes = 100) =>
  Array.from({ length: count }, (_, i) => entry(i, bytes));
const sizes = (batches: UnitEntry[][]) => batches.map((b) => b.length);

describe("how much a read takes", () => {
  const readBytes = readBytesFor(6);
  it.each([
    ["4 batches of small messages", { batchSize: 100, pending: 0, largestBytes: 1000 }, 400],
    ["at most 400 messages", { batchSize: 10, pending: 0, largestBytes: 100 }, 40],
    ["one batch when 4 would pass 400", { batchSize: 1000, pending: 0, largestBytes: 100 }, 1000],
    [
      "what fits its share of memory if all were as large as the largest seen",
      { batchSize: 100, pending: 0, largestBytes: 256 * 1024 },
      16,
    ],
    ["at least one message, however large", { batchSize: 10, pending: 0, largestBytes: 1e9 }, 1],
    ["never past the pending limit", { batchSize: 100, pending: 950, largestBytes: 100 }, 50],
    [
      "nothing when the pending list is full",
      { batchSize: 10, pending: PENDING_LIMIT, largestBytes: 1 },
      0,
    ],
  ])("%s", (_, limits, expected) => {
    expect(readCount({ ...limits, readBytes })).toBe(expected);
  });

  it("shares the same memory among however many visits run at once", () => {
    for (const concurrency of [1, 6, 10, 32, 100]) {
      // Each visit holds two reads (one read ahead).
      expect(concurrency * 2 * readBytesFor(concurrency)).toBeLessThanOrEqual(READ_MEMORY);
      expect(readBytesFor(concurrency)).toBeGreaterThan(READ_MEMORY / (2 * concurrency) - 1);
    }
    expect(readBytesFor(6)).toBe(4 * 1024 * 1024);
    const big = { batchSize: 100, pending: 0, largestBytes: 64 * 1024 };
    expect(readCount({ ...big, readBytes: readBytesFor(6) })).toBe(64);
    expect(readCount({ ...big, readBytes: readBytesFor(32) })).toBe(12);
  });
});

describe("cutting entries into requests", () => {
  const limits = { batchSize: 10, maxBatchBytes: 1000 };

  it("makes batches of batchSize, in order", () => {
    const { batches, rest } = cutBatches(entries(25), limits, true);
    expect(sizes(batches)).toEqual([10, 10, 5]);
    expect(batches.flat().map((e) => e.entryId)).toEqual(entries(25).map((e) => e.entryId));
    expect(rest).toEqual([]);
  });

  it("hands back a last batch that is not full while more may come", () => {
    const { batches, rest } = cutBatches(entries(25), limits, false);
    expect(sizes(batches)).toEqual([10, 10]);
    expect(rest).toHaveLength(5);
  });

  it("keeps every body under maxBatchBytes", () => {
    const { batches } = cutBatches(entries(10, 300), limits, true);
    expect(sizes(batches)).toEqual([3, 3, 3, 1]);
  });

  it("sends a message larger than maxBatchBytes on its own, never holding it back", () => {
    const big = [entry(1, 100), entry(2, 5000), entry(3, 100)];
    const { batches, rest } = cutBatches(big, limits, false);
    expect(sizes(batches)).toEqual([1, 1]);
    expect(rest.map((e) => e.entryId)).toEqual(["1-3"]);
  });
});
