// The roster timer with the delivery queue bound (wrangler.toml as deployed): what a publish
// through an isolate's stale copy of the roster did not wake is delivered by the timer's task,
// which the queue holds back a second (delaySeconds), with no cron and no pass.

import { expect, it } from "vitest";
import { rosterMember } from "../../shared/keys.ts";
import { Rosters } from "../../shared/roster.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { dbOf, publishThrough } from "../helpers/roster.ts";
import type { Stack } from "../helpers/stack.ts";
import { subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("roster-q", { queue: true }, (f) => {
  ({ stack, receiver, channel } = f);
});

it("delivers what a stale copy did not wake for a new subscription, at the timer's time, by its task", async () => {
  const db = dbOf(stack);
  const isolate = new Rosters();
  const t = Date.now();
  await publishThrough(stack, db, isolate, channel, "before", t); // its copy: nobody subscribes
  receiver.setSecret((await subscribe(stack, channel, { name: "new", url: receiver.url })).secret);
  const timerAt = Number(await stack.redis.zscore(stack.keys.due(), rosterMember(channel)));
  expect(timerAt).toBeGreaterThan(t);
  const missed = await publishThrough(stack, db, isolate, channel, "missed", t + 1);
  expect(missed.duplicate === false && missed.woken).toEqual([]);

  await receiver.waitFor((r) => r.messages().some((m) => m.data === "missed"), 5000);
  const request = receiver.requests.find((r) => r.body?.messages.some((m) => m.data === "missed"));
  expect(request?.verified).toBe(true);
  expect(request!.at).toBeGreaterThanOrEqual(timerAt);
  expect(receiver.messages().map((m) => m.data)).toEqual(["missed"]);
});
