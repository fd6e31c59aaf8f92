import { expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, subscribe } from "../helpers/subscriptions.ts";

// One publish of a backlog, then nothing: no later publish can join its deliverer. With the queue
// bound and budgets longer than the backlog lasts, the deliverer asks the queue for another
// invocation once its backlog has lasted a second.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("join", { queue: true, vars: { PASS_BUDGET_MS: "10000" } }, (f) => {
  ({ stack, receiver, channel } = f);
});

it("a backlog that outlasts a second brings in another invocation through the queue", async () => {
  await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
  // Six requests at a time in the kick's invocation, 200 ms each: 120 take 4 s alone.
  receiver.respond({ status: 204, delayMs: 200 });
  const ids = await publish(
    stack,
    channel,
    Array.from({ length: 120 }, (_, i) => ({ data: i })),
  );
  await until("all delivered", async () => new Set(receiver.acceptedIds()).size === 120, 20_000);
  expect(new Set(receiver.acceptedIds())).toEqual(new Set(ids));
  // More than one invocation holds, within the subscription's maxConcurrency (25).
  expect(receiver.maxInFlight()).toBeGreaterThan(6);
  expect(receiver.maxInFlight()).toBeLessThanOrEqual(25);
}, 30_000);
