import { afterAll, beforeAll, expect, it } from "vitest";
import { startReceiver } from "../helpers/receiver.ts";
import { until } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Expiry: a subscription further behind than MAX_UNDELIVERED_AGE_MS (1 s here) loses its oldest
// messages to retention (1 s too), and they are counted on it. No kick: delivery happens only in
// the passes the test runs.
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "0", MAX_UNDELIVERED_AGE_MS: "1000" },
  });
});
afterAll(() => stack?.stop());

async function subscription(ch: string, name: string) {
  const res = await stack.api(`/v1/channels/${ch}/subscriptions/${name}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { expired: number; lastExpiredAt: string | null };
}

it("loses its oldest messages, and they are counted on it, never dropped silently", async () => {
  const own = await startReceiver();
  await subscribe(stack, "expiry", { name: "late", url: own.url, batchSize: 100 });
  // Retention would trim after 1 s; only the late subscription holds the messages back.
  const res = await stack.api("/v1/channels/expiry", {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ retention: { maxAgeMs: 1000 } }),
  });
  expect(res.status).toBe(200);
  const old = await publish(
    stack,
    "expiry",
    Array.from({ length: 500 }, (_, n) => ({ data: { n } })),
  );
  let published = old.length;
  await until(
    "the late subscription's messages expire",
    async () => {
      published += (await publish(stack, "expiry", [{ data: "later" }])).length;
      return (await subscription("expiry", "late")).expired > 0;
    },
    10_000,
  );
  expect((await subscription("expiry", "late")).lastExpiredAt).not.toBeNull();
  while ((await runPass(stack)).delivered > 0);
  const delivered = own.acceptedIds().length;
  // Read after the passes: a pass runs the channel's sweep when it is due (a tenth of maxAgeMs
  // after a trim), which may expire more of what the late subscription had not read yet.
  const sub = await subscription("expiry", "late");
  await own.close();
  // Each message was either delivered or counted as expired.
  expect(delivered + sub.expired).toBe(published);
  expect(sub.expired).toBeGreaterThanOrEqual(100);
}, 30_000);
