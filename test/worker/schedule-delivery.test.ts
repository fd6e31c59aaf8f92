// A schedule's run reaches the channel's subscribers like any publish, with the delivery queue
// bound (wrangler.toml as deployed): the run hands the subscribers it woke to the queue at once,
// so nobody waits for the next cron. The cron is dispatched with its scheduled time passed in.

import { afterEach, describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { createSchedule, deleteAllSchedules, fireCron, MINUTE_MS } from "../helpers/schedules.ts";
import type { Stack } from "../helpers/stack.ts";
import { sleep, subscribe } from "../helpers/subscriptions.ts";

const SECRET = `whsec_${btoa("s".repeat(32))}`;

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("scheduled", { queue: true }, (f) => {
  ({ stack, receiver, channel } = f);
});
afterEach(() => deleteAllSchedules(stack));

describe("a schedule's run", () => {
  it("is delivered once, signed, to a subscriber, minute after minute", async () => {
    receiver.setSecret(SECRET);
    await subscribe(stack, channel, { name: "sub", url: receiver.url, secret: SECRET });
    const created = await createSchedule(stack, {
      name: "heartbeat",
      channel,
      cron: "* * * * *",
      timezone: "America/New_York",
      message: { type: "heartbeat", data: { ok: true } },
    });
    const first = Date.parse(created.nextRunAt!);
    for (let minute = 0; minute < 2; minute++) {
      const time = first + minute * MINUTE_MS;
      await Promise.all([fireCron(stack, time), fireCron(stack, time)]);
      await receiver.waitFor((r) => r.acceptedIds().length === minute + 1, 5000);
    }
    // Nothing more comes: each minute was published, and so delivered, once.
    await sleep(500);
    expect(receiver.messages().map((m) => [m.type, m.data])).toEqual([
      ["heartbeat", { ok: true }],
      ["heartbeat", { ok: true }],
    ]);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
  });
});
