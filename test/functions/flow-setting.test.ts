// A push subscription's flow key and its limits through the API on the real stack: shown, changed,
// removed, and every bad combination refused with a 400 naming the field, nothing written. How the
// deliverer keeps to them is test/worker/flow.test.ts's.

import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import type { Stack } from "../helpers/stack.ts";
import { getSubscription, subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("flowset", {}, (f) => {
  ({ stack, receiver, channel } = f);
});

const path = (rest = "") => `/v1/channels/${channel}/subscriptions${rest}`;
const patch = (body: unknown, name = "sub") =>
  stack.api(path(`/${name}`), {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
const subscribeReceiver = (body: Record<string, unknown>) =>
  subscribe(stack, channel, { name: "sub", url: receiver.url, ...body });
const stored = () => stack.redis.hgetall(stack.keys.subscriptions(channel));
const flowOf = (s: Record<string, unknown>) => [s.flowKey, s.flowRate, s.flowParallelism];

const FLOW = { flowKey: "api.example.com:443", flowRate: 20, flowParallelism: 2 };

describe("a subscription's flow key", () => {
  it("is null with its limits unless given, and shown in the view and the list", async () => {
    const created = await subscribeReceiver({});
    expect(flowOf(created)).toEqual([null, null, null]);
    const keyed = await subscribe(stack, channel, { name: "keyed", url: receiver.url, ...FLOW });
    expect(flowOf(keyed)).toEqual(["api.example.com:443", 20, 2]);
    expect(flowOf(await getSubscription(stack, channel, "keyed"))).toEqual(flowOf(keyed));
    const { subscriptions } = (await (await stack.api(path())).json()) as {
      subscriptions: Record<string, unknown>[];
    };
    expect(subscriptions.map((s) => [s.name, ...flowOf(s)])).toEqual([
      ["keyed", "api.example.com:443", 20, 2],
      ["sub", null, null, null],
    ]);
  });

  it("takes a rate alone or a parallelism alone", async () => {
    const rate = await subscribe(stack, channel, {
      name: "rate",
      url: receiver.url,
      flowKey: "k",
      flowRate: 1,
    });
    expect(flowOf(rate)).toEqual(["k", 1, null]);
    const parallel = await subscribeReceiver({ flowKey: "k", flowParallelism: 1000 });
    expect(flowOf(parallel)).toEqual(["k", null, 1000]);
  });

  it("is set, changed field by field, and removed with its limits by PATCH", async () => {
    await subscribeReceiver({});
    const set = await patch({ flowKey: "a.example.com", flowParallelism: 3 });
    expect(set.status).toBe(200);
    expect(flowOf((await set.json()) as Record<string, unknown>)).toEqual([
      "a.example.com",
      null,
      3,
    ]);
    expect((await patch({ flowRate: 50 })).status).toBe(200);
    expect((await patch({ batchSize: 5 })).status).toBe(200);
    expect(flowOf(await getSubscription(stack, channel, "sub"))).toEqual(["a.example.com", 50, 3]);
    expect((await patch({ flowParallelism: null })).status).toBe(200);
    expect(flowOf(await getSubscription(stack, channel, "sub"))).toEqual([
      "a.example.com",
      50,
      null,
    ]);
    expect((await patch({ flowKey: "b.example.com" })).status).toBe(200);
    expect(flowOf(await getSubscription(stack, channel, "sub"))).toEqual([
      "b.example.com",
      50,
      null,
    ]);
    expect((await patch({ flowKey: null })).status).toBe(200);
    expect(flowOf(await getSubscription(stack, channel, "sub"))).toEqual([null, null, null]);
    expect(JSON.parse((await stored()).sub!)).not.toHaveProperty("flow");
  });
});

describe("bad flow settings", () => {
  const create = (body: Record<string, unknown>) =>
    stack.post(path(), { name: "sub", url: receiver.url, ...body });

  it.each([
    [{ flowKey: "" }, "body.flowKey"],
    [{ flowKey: "a b" }, "body.flowKey"],
    [{ flowKey: "a/b" }, "body.flowKey"],
    [{ flowKey: "x".repeat(257) }, "body.flowKey"],
    [{ flowKey: 5 }, "body.flowKey"],
    [{ flowRate: 0 }, "body.flowRate"],
    [{ flowRate: 10_001 }, "body.flowRate"],
    [{ flowRate: 2.5 }, "body.flowRate"],
    [{ flowRate: "20" }, "body.flowRate"],
    [{ flowParallelism: 0 }, "body.flowParallelism"],
    [{ flowParallelism: 1001 }, "body.flowParallelism"],
  ])("400s on %j, on create and on PATCH, and writes nothing", async (bad, field) => {
    await expectInvalid(await create({ ...FLOW, ...bad }), field);
    expect(await stack.redis.exists(stack.keys.subscriptions(channel))).toBe(0);
    await subscribeReceiver(FLOW);
    const before = await stored();
    await expectInvalid(await patch(bad), field);
    expect(await stored()).toEqual(before);
  });

  it.each([
    [{ flowKey: "k" }, "body.flowKey", "give flowRate, flowParallelism or both"],
    [{ flowRate: 5 }, "body.flowRate", "needs a flowKey"],
    [{ flowParallelism: 5 }, "body.flowParallelism", "needs a flowKey"],
  ])(
    "400s on create with %j, a key without limits or limits without a key",
    async (body, field, says) => {
      const res = await create(body);
      const message = await expectInvalid(res, field);
      expect(message).toContain(says);
      expect(await stack.redis.exists(stack.keys.subscriptions(channel))).toBe(0);
    },
  );

  it.each([
    [{}, { flowKey: "k" }, "flowKey: give flowRate"],
    [{}, { flowRate: 5 }, "flowRate: needs a flowKey"],
    [{ flowKey: "k", flowRate: 5 }, { flowRate: null }, "flowKey: give flowRate"],
    [
      { flowKey: "k", flowRate: 5 },
      { flowKey: null, flowParallelism: 2 },
      "flowParallelism: needs",
    ],
  ])(
    "409s on PATCH of %j with %j, what it would leave, and writes nothing",
    async (flow, body, says) => {
      await subscribeReceiver(flow);
      const before = await stored();
      const res = await patch(body);
      expect(res.status).toBe(409);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("flow_incomplete");
      expect(error.message).toContain(says);
      expect(await stored()).toEqual(before);
    },
  );

  it("400s on a create naming flowKey null: a create leaves out what it does not set", async () => {
    await expectInvalid(await create({ flowKey: null }), "body.flowKey");
    expect(await stack.redis.exists(stack.keys.subscriptions(channel))).toBe(0);
  });

  it("has none on a pull subscription: 400 on create, 409 on PATCH", async () => {
    const res = await stack.post(path(), { name: "puller", mode: "pull", ...FLOW });
    const message = await expectInvalid(res, "body");
    expect(message).toContain("a pull subscription has no flow key");
    await subscribe(stack, channel, { name: "puller", mode: "pull" });
    const before = await stored();
    const patched = await patch({ flowKey: "k", flowRate: 5 }, "puller");
    expect(patched.status).toBe(409);
    const { error } = (await patched.json()) as { error: { code: string } };
    expect(error.code).toBe("not_push_subscription");
    expect(await stored()).toEqual(before);
  });
});

async function expectInvalid(res: Response, field: string): Promise<string> {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("invalid_request");
  expect(error.message).toContain(field);
  return error.message;
}
