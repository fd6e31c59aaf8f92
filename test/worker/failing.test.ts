import { describe, expect, it } from "vitest";
import { REPORT_LUA } from "../../shared/lua/report.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// An endpoint that keeps failing: its subscription shows it (status, nextAttemptAt), is disabled
// after DISABLE_AFTER_MS (1.5 s here) without being deleted, comes back with a resume, and each
// step is an event on EVENTS_CHANNEL (the default, streamhook.events). No kick: passes deliver.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "failing",
  {
    vars: {
      KICK_ON_PUBLISH: "false",
      DISABLE_AFTER_MS: "1500",
      RETRY_BASE_MS: "100",
      RETRY_MAX_MS: "200",
    },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

interface Sub {
  status: string;
  paused: boolean;
  nextAttemptAt: string | null;
  failingSince: string | null;
  disabledAt: string | null;
  disabledReason: string | null;
  consecutiveFailures: number;
}

async function sub(name = "hook"): Promise<Sub> {
  const res = await stack.api(`/v1/channels/${channel}/subscriptions/${name}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Sub;
}

/** The events streamhook published about this test's channel, oldest first. */
async function events(): Promise<{ type: string; data: Record<string, unknown> }[]> {
  const res = await stack.api("/v1/channels/streamhook.events/messages?limit=1000");
  if (res.status === 404) return [];
  const page = (await res.json()) as {
    messages: { type: string; data: Record<string, unknown> }[];
  };
  return page.messages.filter((m) => m.data.channel === channel);
}

const types = async () => (await events()).map((e) => e.type);

describe("an endpoint that keeps failing", () => {
  it("is failing, then disabled (paused, not deleted), then back with a resume; each an event", async () => {
    await subscribe(stack, channel, { name: "hook", url: receiver.url });
    receiver.respond({ status: 500 });
    expect((await sub()).status).toBe("active");
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const failing = await sub();
    expect(failing).toMatchObject({ status: "failing", paused: false, disabledAt: null });
    expect(failing.failingSince).not.toBeNull();
    expect(Date.parse(failing.nextAttemptAt!)).toBeGreaterThan(Date.now() - 1000);
    expect(await types()).toEqual(["subscription.failing"]);

    // Every retry fails until DISABLE_AFTER_MS has passed since the first failure.
    await deliverUntil(stack, channel, async () => (await sub()).status === "disabled", "disabled");
    const disabled = await sub();
    expect(disabled).toMatchObject({ paused: true, nextAttemptAt: null });
    expect(
      Date.parse(disabled.disabledAt!) - Date.parse(failing.failingSince!),
    ).toBeGreaterThanOrEqual(1500);
    expect(disabled.disabledReason).toContain("DISABLE_AFTER_MS");
    expect(await types()).toEqual(["subscription.failing", "subscription.disabled"]);

    // Disabled: nothing more is sent, whatever is published.
    const requests = receiver.requests.length;
    await publish(stack, channel, [{ data: 2 }]);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(requests);

    // Resumed: a fresh start, and the first success is an event too.
    receiver.respond({ status: 204 });
    const res = await stack.api(`/v1/channels/${channel}/subscriptions/hook`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: false }),
    });
    expect(res.status).toBe(200);
    expect((await sub()).disabledAt).toBeNull();
    await deliverUntil(stack, channel, () => receiver.acceptedIds().length === 2, "delivered");
    expect(await sub()).toMatchObject({
      status: "active",
      failingSince: null,
      consecutiveFailures: 0,
    });
    expect(await types()).toEqual([
      "subscription.failing",
      "subscription.disabled",
      "subscription.recovered",
    ]);
  }, 30_000);

  it("does not disable an endpoint that fails now and then but succeeds in between", async () => {
    await subscribe(stack, channel, { name: "hook", url: receiver.url, batchSize: 1 });
    // Every other request fails: each failure starts a new failing spell.
    receiver.respond((req) => ({ status: req.n % 2 === 1 ? 500 : 204 }));
    await publish(
      stack,
      channel,
      Array.from({ length: 6 }, (_, i) => ({ data: i })),
    );
    const started = Date.now();
    await deliverUntil(stack, channel, () => receiver.acceptedIds().length === 6, "all delivered", {
      timeoutMs: 10_000,
    });
    while (Date.now() - started < 1700) {
      await publish(stack, channel, [{ data: "more" }]);
      await runPass(stack);
    }
    expect((await sub()).status).not.toBe("disabled");
    expect((await types()).filter((t) => t === "subscription.disabled")).toEqual([]);
  }, 30_000);
});

describe("dead letters", () => {
  it("are announced once per visit with their count, not once per message", async () => {
    await subscribe(stack, channel, { name: "hook", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }]);
    await runPass(stack);
    const dead = (await events()).filter((e) => e.type === "message.dead_lettered");
    expect(dead).toHaveLength(1);
    expect(dead[0]!.data).toMatchObject({ channel, subscription: "hook", count: 3 });
  });
});

describe("a lost reply", () => {
  it("on the report that records a failure: counted once, its event raised once", async () => {
    await loadScripts(stack);
    await subscribe(stack, channel, { name: "hook", url: receiver.url });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1 }]);
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(REPORT_LUA, stack.keys.state(channel)),
      times: 1,
    });
    const injected = await injectedDuring(stack, () => runPass(stack));
    expect(injected["drop-reply"]).toBe(1);
    expect(await sub()).toMatchObject({ status: "failing", consecutiveFailures: 1 });
    expect(await types()).toEqual(["subscription.failing"]);
  });

  it("on the report that records the recovery: the endpoint is healthy, and never reported twice", async () => {
    await loadScripts(stack);
    await subscribe(stack, channel, { name: "hook", url: receiver.url });
    receiver.respond((req) => ({ status: req.n === 1 ? 500 : 204 }));
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    expect((await sub()).status).toBe("failing");
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(REPORT_LUA, stack.keys.state(channel)),
      times: 1,
    });
    await deliverUntil(stack, channel, () => receiver.acceptedIds().length === 1, "delivered");
    expect(await sub()).toMatchObject({ status: "active", failingSince: null });
    const recovered = (await types()).filter((t) => t === "subscription.recovered");
    expect(recovered.length).toBeLessThanOrEqual(1);
  });
});
