import { expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { nextDueOn, until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, subscribe } from "../helpers/subscriptions.ts";

// Two busy subscribers with the queue bound, and a budget long enough for an invocation to
// deliver a while: the local queue runs one batch at a time (as Queues does until it scales up),
// so a hand-over that comes while another subscriber's invocation runs would wait for its end.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("adopt", { queue: true, vars: { PASS_BUDGET_MS: "3000" } }, (f) => {
  ({ stack, receiver, channel } = f);
});

it("a running invocation adopts a hand-over: two busy subscribers never wait for each other", async () => {
  const slow = await startReceiver();
  try {
    // "slow" is busy first: kicked at once, handed over after 3 s to an invocation of its own.
    slow.respond({ status: 204, delayMs: 200 });
    receiver.respond({ status: 204, delayMs: 100 });
    const one = { types: ["slow"], batchSize: 1 };
    await subscribe(stack, channel, { name: "slow", url: slow.url, ...one });
    await subscribe(stack, channel, {
      name: "fast",
      url: receiver.url,
      types: ["fast"],
      batchSize: 1,
    });
    await publish(
      stack,
      channel,
      Array.from({ length: 40 }, (_, i) => ({ type: "slow", data: i })),
    );
    // "fast" is kicked 1.5 s later, so it hands over in the middle of slow's invocation.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await publish(
      stack,
      channel,
      Array.from({ length: 60 }, (_, i) => ({ type: "fast", data: i })),
    );
    await receiver.waitFor((r) => r.messages().length >= 60, 30_000);
    const at = receiver.requests.map((r) => r.at);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    expect(Math.max(...gaps)).toBeLessThan(1000);
    await slow.waitFor((r) => r.messages().length >= 40, 30_000);
    await until("every visit over", async () => (await nextDueOn(stack, channel)) === null);
  } finally {
    await slow.close();
  }
}, 60_000);
