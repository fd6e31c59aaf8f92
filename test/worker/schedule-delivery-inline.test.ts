// Without the delivery queue (a Worker deployed without Queues), the cron that runs a schedule
// also delivers what the run published: its pass looks at what is due again after its timers
// (worker/pass.ts), so the subscriber has the message when that cron invocation ends, not a
// minute later. The cron is dispatched with its scheduled time passed in.

import { afterEach, describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { createSchedule, deleteAllSchedules, fireCron, MINUTE_MS } from "../helpers/schedules.ts";
import type { Stack } from "../helpers/stack.ts";
import { subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("inline", { vars: { EVENTS_CHANNEL: "none" } }, (f) => {
  ({ stack, receiver, channel } = f);
});
afterEach(() => deleteAllSchedules(stack));

describe("a schedule's run without the delivery queue", () => {
  it("is delivered by the cron invocation that published it", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const created = await createSchedule(stack, {
      name: "inline",
      channel,
      cron: "*/5 * * * *",
      message: { type: "tick", data: { n: 1 } },
    });
    const first = Date.parse(created.nextRunAt!);
    await fireCron(stack, first);
    expect(receiver.messages().map((m) => [m.type, m.data])).toEqual([["tick", { n: 1 }]]);
    // A minute later nothing is due: that cron is the idle one command.
    const idle = await countCommands(stack.redis, () => fireCron(stack, first + MINUTE_MS));
    expect(idle.byCommand).toEqual({ zrange: 1 });
    expect(receiver.messages()).toHaveLength(1);
  });
});
