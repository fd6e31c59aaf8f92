// The pass budget on the real stack: a pass stays inside Workers' limits however much is due.
// Its meter's unit tests (shared/meter.test.ts) check the counting; these count what a pass
// really sends, bridge requests and webhook POSTs alike, and when its requests really start.

import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, timedPass } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { pendingCount, publish, subscribe } from "../helpers/subscriptions.ts";

const MAX_SUBREQUESTS = 40; // under the free plan's 50 (docs/operations.md: Free and paid plans)
const BUDGET_MS = 500;

describe(`a pass with PASS_MAX_SUBREQUESTS=${MAX_SUBREQUESTS}`, () => {
  let stack: Stack;
  let receiver: TestReceiver;
  let channel: string;
  deliveryFixture(
    "cap",
    { vars: { KICK_ON_PUBLISH: "false", PASS_MAX_SUBREQUESTS: String(MAX_SUBREQUESTS) } },
    (f) => {
      ({ stack, receiver, channel } = f);
    },
  );

  it("makes at most that many subrequests, Redis and webhooks together, and leaves the rest for the next", async () => {
    const receivers = [receiver, await startReceiver(), await startReceiver()];
    try {
      for (const [i, r] of receivers.entries()) {
        await subscribe(stack, channel, { name: `s${i}`, url: r.url, batchSize: 1 });
      }
      const ids = await publish(
        stack,
        channel,
        Array.from({ length: 20 }, (_, i) => ({ data: i })),
      );
      const posts = () => receivers.reduce((n, r) => n + r.requests.length, 0);
      const spent: number[] = [];
      const onePass = async () => {
        const [bridge, sent] = [stack.bridge.stats.requests, posts()];
        await timedPass(stack);
        spent.push(stack.bridge.stats.requests - bridge + (posts() - sent));
      };
      await onePass();
      // 60 POSTs alone would pass the cap: the first pass stopped short.
      expect(posts()).toBeGreaterThan(0);
      expect(posts()).toBeLessThan(60);
      const allAcked = async () => {
        const counts = await Promise.all(
          receivers.map((_, i) => pendingCount(stack, channel, `s${i}`)),
        );
        return (
          receivers.every((r) => r.acceptedIds().length === ids.length) &&
          counts.every((n) => n === 0)
        );
      };
      await deliverUntil(stack, channel, allAcked, "every subscriber has all 20", {
        timeoutMs: 10_000,
        pass: onePass,
      });
      expect(Math.max(...spent), `subrequests per pass: ${spent}`).toBeLessThanOrEqual(
        MAX_SUBREQUESTS,
      );
      for (const r of receivers) expect(new Set(r.acceptedIds())).toEqual(new Set(ids));
    } finally {
      for (const r of receivers.slice(1)) await r.close();
    }
  });
});

describe(`a pass with PASS_BUDGET_MS=${BUDGET_MS}`, () => {
  let stack: Stack;
  let receiver: TestReceiver;
  let channel: string;
  deliveryFixture(
    "deadline",
    { vars: { KICK_ON_PUBLISH: "false", PASS_BUDGET_MS: String(BUDGET_MS) } },
    (f) => {
      ({ stack, receiver, channel } = f);
    },
  );

  // Visits that would start after the deadline: scheduling.test.ts. This is the visit that is
  // under way when the deadline comes.
  it("starts no batch after its deadline, and leaves the rest for the next", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    // A slow endpoint: six requests at a time, a round of them every 150 ms: about 18 fit in
    // 500 ms, not 40.
    receiver.respond({ status: 204, delayMs: 150 });
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 40 }, (_, i) => ({ data: i })),
    );
    const passes: { startedAt: number }[] = [];
    const onePass = async () => passes.push(await timedPass(stack));
    await onePass();
    expect(receiver.requests.length).toBeGreaterThan(0);
    expect(receiver.requests.length).toBeLessThan(ids.length);
    await deliverUntil(
      stack,
      channel,
      async () =>
        receiver.acceptedIds().length === ids.length &&
        (await pendingCount(stack, channel, "sub")) === 0,
      "all 40 delivered",
      { timeoutMs: 10_000, pass: onePass },
    );
    expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
    // Every request arrived before the deadline of the pass that sent it (the last one started
    // before it came), give or take the trip from the Worker to here.
    for (const request of receiver.requests) {
      const pass = passes.findLast((p) => p.startedAt <= request.at)!;
      expect(request.at, `a request of the pass started at ${pass.startedAt}`).toBeLessThanOrEqual(
        pass.startedAt + BUDGET_MS + 100,
      );
    }
  });
});
