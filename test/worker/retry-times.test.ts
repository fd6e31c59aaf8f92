// Retry times only move later: whatever runs meanwhile (manual passes in a loop, overlapping each
// other, as a busy deployment's kicks and cron do), no retry comes before its backoff or the
// Retry-After its endpoint asked for. Checked on every retry, not on average.

import { describe, expect, it } from "vitest";
import { retryDelayMs } from "../../worker/retry.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { settled } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, sleep, subscribe } from "../helpers/subscriptions.ts";

const RETRY_BASE_MS = 400;
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "retry-times",
  { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: String(RETRY_BASE_MS) } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

/** Passes run back to back from two loops, until `done`: each overlaps others. */
async function passesUntil(done: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  const loop = async () => {
    while (!(await done()) && Date.now() < deadline) {
      await stack.post("/v1/deliver", undefined);
      await sleep(50);
    }
  };
  await Promise.all([loop(), loop()]);
}

/** Each message's request times, in order. */
function timesOf(r: TestReceiver): Map<string, number[]> {
  const out = new Map<string, number[]>();
  for (const req of r.requests) {
    for (const m of req.body?.messages ?? []) out.set(m.id, [...(out.get(m.id) ?? []), req.at]);
  }
  return out;
}

describe("a retry, while passes keep running", () => {
  it("waits as long as a 503's Retry-After asks, every time", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    // Each message's first two requests are refused for 2 s; its third is taken.
    const seen = new Map<string, number>();
    receiver.respond((req) => {
      const id = req.body!.messages[0]!.id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      return seen.get(id)! <= 2
        ? { status: 503, headers: { "retry-after": "2" } }
        : { status: 204 };
    });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 4 }, (_, i) => ({ data: i })),
    );
    await passesUntil(() => settled(stack, channel, "sub"), 20_000);
    const times = timesOf(receiver);
    for (const id of ids) {
      const at = times.get(id)!;
      expect(at, id).toHaveLength(3);
      for (let i = 1; i < at.length; i++) {
        expect(at[i]! - at[i - 1]!, `${id}, retry ${i}`).toBeGreaterThanOrEqual(2000);
      }
    }
  }, 30_000);

  it("waits its backoff, every time", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    const seen = new Map<string, number>();
    receiver.respond((req) => {
      const id = req.body!.messages[0]!.id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      return seen.get(id)! <= 3 ? { status: 500 } : { status: 204 };
    });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 3 }, (_, i) => ({ data: i })),
    );
    await passesUntil(() => settled(stack, channel, "sub"), 20_000);
    const times = timesOf(receiver);
    const policy = { retryBaseMs: RETRY_BASE_MS, retryMaxMs: 6 * 3_600_000 };
    for (const id of ids) {
      const at = times.get(id)!;
      expect(at, id).toHaveLength(4);
      for (let attempt = 1; attempt < at.length; attempt++) {
        const wait = retryDelayMs(attempt, "sub", policy);
        expect(at[attempt]! - at[attempt - 1]!, `${id}, retry ${attempt}`).toBeGreaterThanOrEqual(
          wait,
        );
      }
    }
  }, 30_000);
});
