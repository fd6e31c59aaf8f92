import { describe, expect, it } from "vitest";
import type { Taken } from "../../shared/engine/take.ts";
import { cutBatches, READ_MEMORY, readBytesFor } from "../../worker/batches.ts";
import { webhookBody } from "../../worker/deliver.ts";

/** A message whose JSON text (what its webhook body carries) holds `data`. */
const entry = (n: number, data = "1"): Taken => ({
  entryId: `1-${n}`,
  messageId: `1-${n}`,
  attempt: 1,
  text: `{"id":"1-${n}","type":null,"data":${JSON.stringify(data)},"publishedAt":"1970-01-01T00:00:00.001Z","attempt":1}`,
  bytes: data.length,
  trace: { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00" },
  orderingKey: null,
});
const entries = (count: number, data = "1") =>
  Array.from({ length: count }, (_, i) => entry(i, data));
const sizes = (batches: Taken[][]) => batches.map((b) => b.length);
const endpoint = {
  channel: "orders",
  subscription: "billing",
  group: "billing~1",
  url: "http://127.0.0.1/",
  timeoutMs: 1000,
  secrets: [],
};
/** The bytes of the webhook body a batch makes. */
const bodyBytes = (batch: Taken[], to = endpoint) =>
  new TextEncoder().encode(webhookBody(to, batch)).byteLength;

describe("what a take may hold", () => {
  it("shares the same memory among however many deliverers run at once", () => {
    for (const concurrency of [1, 6, 10, 32, 100]) {
      // Two takes' worth each (one sent while the next comes).
      expect(2 * concurrency * readBytesFor(concurrency)).toBeLessThanOrEqual(READ_MEMORY);
      expect(readBytesFor(concurrency)).toBeGreaterThan(READ_MEMORY / (2 * concurrency) - 1);
    }
    expect(readBytesFor(6)).toBe(4 * 1024 * 1024);
    expect(readBytesFor(0)).toBe(READ_MEMORY / 2);
  });
});

describe("cutting entries into requests", () => {
  const limits = { batchSize: 10, maxBatchBytes: 2000 };

  it("makes batches of batchSize, in order, the last one whatever its size", () => {
    const batches = cutBatches(entries(25), limits);
    expect(sizes(batches)).toEqual([10, 10, 5]);
    expect(batches.flat()).toEqual(entries(25));
  });

  it("makes nothing of nothing", () => {
    expect(cutBatches([], limits)).toEqual([]);
  });

  it("keeps every body within maxBatchBytes, counting each message's JSON text", () => {
    // Each text is about 490 bytes: three fit a 2,000-byte body with its envelope, four do not.
    const batches = cutBatches(entries(10, "x".repeat(400)), limits);
    expect(sizes(batches)).toEqual([3, 3, 3, 1]);
    for (const batch of batches) expect(bodyBytes(batch)).toBeLessThanOrEqual(2000);
  });

  it("counts the JSON text, not the stored bytes", () => {
    const small = entries(10).map((e) => ({ ...e, bytes: 1e6 }));
    expect(sizes(cutBatches(small, limits))).toEqual([10]);
  });

  it.each([
    ["x", 1],
    ["é", 2],
    ["€", 3],
    ["😀", 4],
  ])("counts a body's bytes as UTF-8, not as characters (%s: %i bytes)", (char, bytes) => {
    // Each text is about 490 bytes in a body, however many characters that takes.
    const batches = cutBatches(entries(10, char.repeat(Math.floor(400 / bytes))), limits);
    for (const batch of batches) expect(bodyBytes(batch)).toBeLessThanOrEqual(2000);
    expect(sizes(batches)).toEqual([3, 3, 3, 1]);
  });

  it("keeps every body within maxBatchBytes with names at their longest (128 characters)", () => {
    const longest = { ...endpoint, channel: "c".repeat(128), subscription: "s".repeat(128) };
    // Every text size from a few per body to one, those that fill a body exactly included.
    for (let length = 200; length < 1000; length++) {
      const same = entries(10).map((e) => ({ ...e, text: "y".repeat(length) }));
      for (const batch of cutBatches(same, limits)) {
        expect(bodyBytes(batch, longest), `texts of ${length}`).toBeLessThanOrEqual(2000);
      }
    }
  });

  it("sends a message larger than maxBatchBytes on its own, never holding it back", () => {
    const big = "x".repeat(5000);
    expect(sizes(cutBatches([entry(1, big), entry(2), entry(3, big), entry(4)], limits))).toEqual([
      1, 1, 1, 1,
    ]);
  });
});
