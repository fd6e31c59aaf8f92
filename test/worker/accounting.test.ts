import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliveriesScheduled, deliverUntil } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { pendingCount, publish, subscribe } from "../helpers/subscriptions.ts";

// A seeded generator (mulberry32), so a failing run can be replayed exactly.
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

let stack: Stack;
const receivers: TestReceiver[] = [];
beforeAll(async () => {
  stack = await startStack({
    vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "20", RETRY_MAX_MS: "80" },
  });
});
afterAll(async () => {
  for (const r of receivers) await r.close();
  await stack?.stop();
});

describe("with receivers failing at random", () => {
  it("ends with every published message received or dead-lettered, none missing", async () => {
    const channel = "accounting";
    const subscribers = 3;
    for (let i = 0; i < subscribers; i++) {
      const r = await startReceiver();
      const next = random(1000 + i);
      // 30% of requests fail as a whole, 20% reject a random part of the batch.
      r.respond((req) => {
        const roll = next();
        if (roll < 0.3) return { status: 500 };
        if (roll < 0.5) {
          const ids = (req.body?.messages ?? []).map((m) => m.id).filter(() => next() < 0.5);
          return { status: 200, body: { failed: ids } };
        }
        return { status: 204 };
      });
      receivers.push(r);
      await subscribe(stack, channel, { name: `s${i}`, url: r.url, batchSize: 8, maxAttempts: 3 });
    }
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(
        ...(await publish(
          stack,
          channel,
          Array.from({ length: 40 }, (_, j) => ({ data: j })),
        )),
      );
    }

    // Pass after pass, each when the next retry is due, until nothing is scheduled.
    const nothingDue = async () => (await deliveriesScheduled(stack)) === 0;
    await deliverUntil(stack, channel, nothingDue, "nothing scheduled", { timeoutMs: 60_000 });

    let deadInAll = 0;
    for (const [i, r] of receivers.entries()) {
      const dead = (
        await stack.redis.xrange(stack.keys.deadLetters(channel, `s${i}`), "-", "+")
      ).map(([, fields]) => fields[fields.indexOf("o") + 1]!);
      const accepted = new Set(r.acceptedIds());
      expect(dead.filter((id) => accepted.has(id))).toEqual([]);
      expect([...accepted, ...dead].sort()).toEqual([...ids].sort());
      expect(await pendingCount(stack, channel, `s${i}`)).toBe(0);
      deadInAll += dead.length;
    }
    // The failures were real enough to exhaust some (which requests draw a failure depends on
    // the order they go out in, side by side).
    expect(deadInAll).toBeGreaterThan(0);
  }, 120_000);
});
