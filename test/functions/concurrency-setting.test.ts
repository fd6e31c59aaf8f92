// maxConcurrency through the API on the real stack: how many webhook requests of a push
// subscription may be in flight at once. Only the setting: how the deliverer keeps to it is the
// engine's to test.

import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import type { Stack } from "../helpers/stack.ts";
import { getSubscription, subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("concurrency", {}, (f) => {
  ({ stack, receiver, channel } = f);
});

const path = (rest = "") => `/v1/channels/${channel}/subscriptions${rest}`;
const patch = (body: unknown) =>
  stack.api(path("/sub"), {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const subscribeReceiver = (body: Record<string, unknown>) =>
  subscribe(stack, channel, { name: "sub", url: receiver.url, ...body });
const stored = () => stack.redis.hgetall(stack.keys.subscriptions(channel));

async function listed(): Promise<[unknown, unknown][]> {
  const { subscriptions } = (await (await stack.api(path())).json()) as {
    subscriptions: Record<string, unknown>[];
  };
  return subscriptions.map((s) => [s.name, s.maxConcurrency]);
}

describe("the maxConcurrency setting", () => {
  it("is 25 unless given, and shown in the view and the list", async () => {
    const created = await subscribeReceiver({});
    expect(created.maxConcurrency).toBe(25);
    await subscribe(stack, channel, { name: "serial", url: receiver.url, maxConcurrency: 1 });
    expect((await getSubscription(stack, channel, "serial")).maxConcurrency).toBe(1);
    expect(await listed()).toEqual([
      ["serial", 1],
      ["sub", 25],
    ]);
  });

  it.each([[1], [100]])("takes %j, a bound, on create", async (value) => {
    const created = await subscribeReceiver({ maxConcurrency: value });
    expect(created.maxConcurrency).toBe(value);
    expect((await getSubscription(stack, channel, "sub")).maxConcurrency).toBe(value);
  });

  it("is changed by PATCH, and kept by a PATCH of another field", async () => {
    await subscribeReceiver({ maxConcurrency: 10 });
    const res = await patch({ maxConcurrency: 100 });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Record<string, unknown>).maxConcurrency).toBe(100);
    await patch({ batchSize: 5 });
    expect((await getSubscription(stack, channel, "sub")).maxConcurrency).toBe(100);
    await patch({ maxConcurrency: 1 });
    expect((await getSubscription(stack, channel, "sub")).maxConcurrency).toBe(1);
  });

  it.each([[0], [101], [2.5], [-1], ["5"], ["x"], [null], [true]])(
    "400s on %j, on create and on PATCH, and writes nothing",
    async (value) => {
      const created = await stack.post(path(), {
        name: "sub",
        url: receiver.url,
        maxConcurrency: value,
      });
      await expectInvalid(created);
      expect(await stack.redis.exists(stack.keys.subscriptions(channel))).toBe(0);
      await subscribeReceiver({ maxConcurrency: 7 });
      const before = await stored();
      await expectInvalid(await patch({ maxConcurrency: value }));
      expect(await stored()).toEqual(before);
    },
  );

  it("reads as 25 on a subscription stored before the setting existed", async () => {
    await subscribeReceiver({ maxConcurrency: 3 });
    const key = stack.keys.subscriptions(channel);
    const { maxConcurrency, ...older } = JSON.parse((await stack.redis.hget(key, "sub"))!);
    expect(maxConcurrency).toBe(3);
    await stack.redis.hset(key, { sub: JSON.stringify(older) });
    expect((await getSubscription(stack, channel, "sub")).maxConcurrency).toBe(25);
    expect(await listed()).toEqual([["sub", 25]]);
  });

  it("is kept and shown on a pull subscription, as timeoutMs and the other push-only settings are", async () => {
    const pulled = await subscribe(stack, channel, { name: "puller", mode: "pull" });
    expect(pulled).toMatchObject({ maxConcurrency: 25, timeoutMs: 10_000 });
    const given = { name: "given", mode: "pull", maxConcurrency: 3, timeoutMs: 500 };
    expect(await subscribe(stack, channel, given)).toMatchObject({
      maxConcurrency: 3,
      timeoutMs: 500,
    });
  });
});

async function expectInvalid(res: Response) {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("invalid_request");
  expect(error.message).toContain("body.maxConcurrency");
}
