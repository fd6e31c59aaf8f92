// How the delivery queue's consumer settles a task, against the real schedule: it runs in this
// process (worker/consumer.ts `consume`) on a client of the stack's bridge, with queue messages
// that record what was done with them.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { unmetered } from "../../shared/meter.ts";
import { getDb } from "../../shared/redis.ts";
import { consume, type TaskMessage } from "../../worker/consumer.ts";
import { type DeliveryTask, noQueue } from "../../worker/dispatch.ts";
import { kick } from "../../worker/pass.ts";
import type { Worker } from "../../worker/worker.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { retryDueAt } from "../helpers/schedule.ts";
import { API_TOKEN, BRIDGE_TOKEN, type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

const CHANNEL = "consumer";
let stack: Stack;
let receiver: TestReceiver;
let worker: Worker;
beforeAll(async () => {
  // Retries a minute out: a task that comes now finds nothing due.
  const vars = { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "60000" };
  stack = await startStack({ vars });
  receiver = await startReceiver();
  const config = loadConfig({
    ...vars,
    UPSTASH_REDIS_REST_URL: stack.bridge.url,
    UPSTASH_REDIS_REST_TOKEN: BRIDGE_TOKEN,
    API_TOKEN,
  });
  worker = {
    db: getDb(config, unmetered()),
    config,
    clock: Date.now,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    dispatch: noQueue,
    kick: (channel, woken) => kick(worker, channel, woken),
  };
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

/** A queue message carrying `task`; what the consumer did with it. */
function message(task: DeliveryTask) {
  const done: { how?: "ack" | "retry"; delaySeconds?: number } = {};
  const m: TaskMessage = {
    body: task,
    attempts: 1,
    ack: () => {
      done.how = "ack";
    },
    retry: (options) => {
      done.how = "retry";
      done.delaySeconds = options?.delaySeconds;
    },
  };
  return { m, done };
}

const retryTask = (at?: number): DeliveryTask => ({
  v: 1,
  channel: CHANNEL,
  subscription: "sub",
  why: "retry",
  ...(at === undefined ? {} : { at }),
});

describe("a retry task that comes before its subscription is due", () => {
  let due = 0;
  beforeAll(async () => {
    // A failed request: its retry a minute out, nothing else due.
    receiver.respond({ status: 500 });
    await subscribe(stack, CHANNEL, { name: "sub", url: receiver.url });
    await publish(stack, CHANNEL, [{ data: 1 }]);
    await runPass(stack);
    due = (await retryDueAt(stack, CHANNEL, "sub"))!;
    expect(due).toBeGreaterThan(Date.now() + 30_000);
  });

  it("comes again when it is due, when the schedule still says its time", async () => {
    const { m, done } = message(retryTask(due));
    await consume(worker, [m]);
    expect(done.how).toBe("retry");
    const wait = (due - Date.now()) / 1000;
    expect(done.delaySeconds).toBeGreaterThanOrEqual(Math.floor(wait));
    expect(done.delaySeconds).toBeLessThanOrEqual(Math.ceil(wait) + 1);
  });

  it("is dropped when the schedule moved later since it was asked for", async () => {
    // Asked for a time the schedule has left behind: what it came for was settled, and the
    // visit that moved the schedule asked for a task of its own.
    const { m, done } = message(retryTask(due - 10_000));
    await consume(worker, [m]);
    expect(done.how).toBe("ack");
  });

  it("without a time of its own, comes again when the subscription is due", async () => {
    const { m, done } = message(retryTask());
    await consume(worker, [m]);
    expect(done.how).toBe("retry");
    expect(done.delaySeconds).toBeGreaterThan(30);
    expect(receiver.requests).toHaveLength(1);
  });
});
