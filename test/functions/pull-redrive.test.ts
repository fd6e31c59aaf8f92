import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { redriveField } from "../../shared/keys.ts";
import { type Pulled, pullPath } from "../helpers/pull.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, publish, subscribe } from "../helpers/subscriptions.ts";

// Dead letters of a pull subscription put back (POST .../dead-letters/redrive) are pulled again,
// by this subscription only, at attempt 1; a redriven message is acked, nacked and extended by
// the id it is pulled with ("0-<n>"), and carries its original id as redrivenFrom.
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: { TRIM_MIN_INTERVAL_MS: "3600000" } });
});
afterAll(async () => {
  await stack?.stop();
});

const path = pullPath;

async function post(url: string, body: unknown) {
  const res = await stack.post(url, body);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

const pull = async (channel: string, body: Record<string, unknown> = {}, name = "work") =>
  (await post(`${path(channel, name)}/pull`, { max: 10, ...body })).messages as Pulled[];

async function deadLetterIds(channel: string) {
  const res = await stack.api(`${path(channel)}/dead-letters`);
  return ((await res.json()) as { messages: { id: string }[] }).messages.map((m) => m.id);
}

/** A pull subscription with `n` messages dead-lettered (maxAttempts 1: pulled, nacked, gone). */
async function withDeadLetters(channel: string, n: number) {
  await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest", maxAttempts: 1 });
  const ids = await publish(
    stack,
    channel,
    Array.from({ length: n }, (_, i) => ({ data: { n: i } })),
  );
  expect((await pull(channel)).map((m) => m.id)).toEqual(ids);
  await post(`${path(channel)}/nack`, { ids });
  expect(await pull(channel)).toEqual([]); // the look after the nack parks them
  expect(await deadLetterIds(channel)).toEqual(ids);
  return ids;
}

const hasMarker = async (channel: string) =>
  (await stack.redis.hexists(stack.keys.subscriptions(channel), redriveField("work"))) === 1;

describe("redrive of a pull subscription", () => {
  it("makes its dead letters pullable again, at attempt 1, until they are acked", async () => {
    const ids = await withDeadLetters("r-pull", 2);
    expect(await post(`${path("r-pull")}/dead-letters/redrive`, {})).toEqual({
      redriven: 2,
      missing: [],
    });
    expect(await deadLetterIds("r-pull")).toEqual([]);
    const redriven = await pull("r-pull", { consumer: "a" });
    expect(redriven).toEqual(
      ids.map((id, n) =>
        expect.objectContaining({
          id: expect.stringMatching(/^0-\d+$/),
          redrivenFrom: id,
          data: { n },
          attempt: 1,
          publishedAt: new Date(Number(id.split("-")[0])).toISOString(),
        }),
      ),
    );
    expect(await pull("r-pull", { consumer: "b" })).toEqual([]); // leased to "a"
    const done = await post(`${path("r-pull")}/pull`, { ack: redriven.map((m) => m.id) });
    expect(done).toEqual({ messages: [], acked: 2 });
    // Nothing left to redrive: the pulls are back to the channel alone.
    expect(await hasMarker("r-pull")).toBe(false);
    expect(await stack.redis.xlen(stack.keys.redrive("r-pull", "work"))).toBe(0);
    const [next] = await publish(stack, "r-pull", [{ data: "new" }]);
    expect((await pull("r-pull")).map((m) => [m.id, m.attempt])).toEqual([[next, 1]]);
  });

  it("serves redriven messages before new ones, to this subscription only", async () => {
    const [dead] = await withDeadLetters("r-first", 1);
    await subscribe(stack, "r-first", { name: "other", mode: "pull", from: "latest" });
    const [fresh] = await publish(stack, "r-first", [{ data: "new" }]);
    await post(`${path("r-first")}/dead-letters/redrive`, { ids: [dead] });
    const first = await pull("r-first", { max: 1 });
    expect(first.map((m) => m.redrivenFrom)).toEqual([dead]);
    expect((await pull("r-first", { max: 1 })).map((m) => m.id)).toEqual([fresh]);
    expect((await pull("r-first", {}, "other")).map((m) => m.id)).toEqual([fresh]);
  });

  it("nacks a redriven message by its id, and parks it again under its original id when it fails again", async () => {
    const [original] = await withDeadLetters("r-again", 1);
    await post(`${path("r-again")}/dead-letters/redrive`, {});
    const [redriven] = await pull("r-again");
    expect(
      await post(`${path("r-again")}/extend`, { ids: [redriven!.id], visibilityTimeoutMs: 60_000 }),
    ).toEqual({
      extended: 1,
    });
    expect(await post(`${path("r-again")}/nack`, { ids: [redriven!.id] })).toEqual({ nacked: 1 });
    expect(await pull("r-again")).toEqual([]); // its one attempt used: parked again
    expect(await deadLetterIds("r-again")).toEqual([original]);
    expect(await getSubscription(stack, "r-again", "work")).toMatchObject({ deadLetters: 1 });
    // And redriven once more.
    await post(`${path("r-again")}/dead-letters/redrive`, {});
    expect((await pull("r-again")).map((m) => [m.redrivenFrom, m.attempt])).toEqual([
      [original, 1],
    ]);
  });

  it("leaves no marker behind when the subscription is deleted", async () => {
    await withDeadLetters("r-delete", 1);
    await post(`${path("r-delete")}/dead-letters/redrive`, {});
    expect(await hasMarker("r-delete")).toBe(true);
    const res = await stack.api(path("r-delete"), { method: "DELETE" });
    expect(res.status).toBe(204);
    const fields = await stack.redis.hkeys(stack.keys.subscriptions("r-delete"));
    expect(fields.filter((field) => field.startsWith("work"))).toEqual([]); // "~" ones: the channel's
    expect(await stack.redis.exists(stack.keys.redrive("r-delete", "work"))).toBe(0);
  });
});
