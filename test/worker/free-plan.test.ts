// The free plan's 50 subrequests per invocation, counted where they land: every request a pass
// makes reaches the bridge (Redis) or a receiver (a webhook), so the requests they count while
// one pass runs, and nothing else does, are that invocation's subrequests. Over 1,000
// subscriptions with a backlog and retries due, no pass makes more than 50, and each goes on
// where the one before stopped.

import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver } from "../helpers/receiver.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, subscribe } from "../helpers/subscriptions.ts";

const LIMIT = 50;
const SUBSCRIPTIONS = 1000;
let stack: Stack;
let channel: string;
deliveryFixture(
  "free",
  {
    vars: {
      KICK_ON_PUBLISH: "false",
      PASS_MAX_SUBREQUESTS: String(LIMIT),
      RETRY_BASE_MS: "200",
      RETRY_MAX_MS: "200",
    },
  },
  (f) => {
    ({ stack, channel } = f);
  },
);

describe(`an invocation on the free plan (PASS_MAX_SUBREQUESTS=${LIMIT})`, () => {
  it("never makes more than that many subrequests, and the next goes on where it stopped", async () => {
    const healthy = await startReceiver();
    // Half the subscriptions fail each message's first request: their retries come due too.
    const flaky = await startReceiver();
    const seen = new Set<string>();
    flaky.respond((req) => {
      const key = `${req.body!.subscription}/${req.body!.messages[0]!.id}`;
      if (seen.has(key)) return { status: 204 };
      seen.add(key);
      return { status: 503 };
    });
    try {
      const names = Array.from({ length: SUBSCRIPTIONS }, (_, i) => `s${i}`);
      for (let i = 0; i < names.length; i += 50) {
        await Promise.all(
          names.slice(i, i + 50).map((name, j) =>
            subscribe(stack, channel, {
              name,
              url: (i + j) % 2 === 0 ? healthy.url : flaky.url,
              maxAttempts: 5,
            }),
          ),
        );
      }
      const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
      const delivered = () => {
        const got = new Set<string>();
        for (const r of [healthy, flaky]) {
          for (const req of r.requests) {
            if (req.status === undefined || req.status >= 300) continue;
            for (const m of req.body?.messages ?? []) got.add(`${req.body!.subscription}/${m.id}`);
          }
        }
        return got.size;
      };
      const requests = () => healthy.requests.length + flaky.requests.length;
      const spent: number[] = [];
      const progress: number[] = [];
      const started = Date.now();
      while (delivered() < SUBSCRIPTIONS * ids.length && Date.now() - started < 120_000) {
        const [bridge, posts, before] = [stack.bridge.stats.requests, requests(), delivered()];
        const res = await stack.post("/v1/deliver", undefined);
        expect(res.status, await res.clone().text()).toBe(200);
        spent.push(stack.bridge.stats.requests - bridge + (requests() - posts));
        progress.push(delivered() - before);
        // Retries are due 200 ms after their failure: wait for them when nothing else is left.
        if (progress.at(-1) === 0) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      expect(delivered()).toBe(SUBSCRIPTIONS * ids.length);
      expect(Math.max(...spent), `subrequests per pass: ${spent.join(",")}`).toBeLessThanOrEqual(
        LIMIT,
      );
      // Each pass stops short of everything and the next goes on: nearly all spend their budget
      // to the last few subrequests (what a visit needs to start and end), and those that do not
      // only wait for retries to come due.
      expect(progress.every((p) => p < SUBSCRIPTIONS)).toBe(true);
      const full = spent.filter((n) => n >= LIMIT - 5).length;
      expect(full, `subrequests per pass: ${spent.join(",")}`).toBeGreaterThan(spent.length * 0.75);
    } finally {
      await healthy.close();
      await flaky.close();
    }
  }, 180_000);
});
