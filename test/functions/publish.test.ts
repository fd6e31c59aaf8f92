import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: { MAX_MESSAGE_BYTES: "1000" } });
});
afterAll(() => stack?.stop());

const xlen = (channel: string) => stack.redis.xlen(stack.keys.channel(channel));
/** The channel's messages as a reader sees them: id and data, oldest first. */
const history = async (channel: string) => {
  const res = await stack.api(`/v1/channels/${channel}/messages`);
  const { messages } = (await res.json()) as { messages: { id: string; data: unknown }[] };
  return messages.map(({ id, data }) => ({ id, data }));
};

describe("publishing one message", () => {
  it("appends it to the channel's stream and answers 201 with its id", async () => {
    const res = await stack.post("/v1/channels/orders/messages", {
      data: { orderId: 42, note: "ünïcødé ✓" },
      type: "order.created",
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    expect(id).toMatch(/^\d+-\d+$/);
    const [[entryId, fields]] = (await stack.redis.xrange(
      stack.keys.channel("orders"),
      id,
      id,
    )) as [[string, string[]]];
    expect(entryId).toBe(id);
    // No p: the request had no trace context, so none is stored (its trace is derived from the
    // id: shared/trace.ts); n: the request's nonce, which lets a publish whose reply was lost
    // find its own entries.
    expect(fields).toEqual([
      "t",
      "order.created",
      "d",
      '{"orderId":42,"note":"ünïcødé ✓"}',
      "n",
      expect.stringMatching(/^[0-9a-f]{16}$/),
    ]);
  });

  it("accepts any JSON value as data, null included, and no type", async () => {
    for (const data of [null, 0, "text", [1, { a: [] }], false]) {
      const res = await stack.post("/v1/channels/values/messages", { data });
      expect(res.status).toBe(201);
    }
    const history = await stack.api("/v1/channels/values/messages");
    const body = (await history.json()) as { messages: { data: unknown; type: unknown }[] };
    expect(body.messages.map((m) => m.data)).toEqual([null, 0, "text", [1, { a: [] }], false]);
    expect(body.messages.every((m) => m.type === null)).toBe(true);
  });

  it("registers the channel so it is listed", async () => {
    await stack.post("/v1/channels/listed.channel_1/messages", { data: 1 });
    const members = await stack.redis.smembers(stack.keys.channels());
    expect(members).toContain("listed.channel_1");
  });

  it("costs exactly 2 Redis commands on a channel without subscriptions, its roster known to the isolate", async () => {
    // The first reads the channel's roster (HGETALL); the isolate keeps it for a second
    // (shared/roster.ts, test/worker/roster.test.ts).
    await stack.post("/v1/channels/cost/messages", { data: "first" });
    const counted = await countCommands(stack.redis, async () => {
      expect((await stack.post("/v1/channels/cost/messages", { data: "x" })).status).toBe(201);
    });
    expect(counted.byCommand).toEqual({ evalsha: 1, xadd: 1 });
    expect(counted.total).toBe(2);
  });
});

describe("publishing a batch", () => {
  it("appends every message in order, in one round trip, and answers with the ids", async () => {
    const before = stack.bridge.stats.requests;
    const messages = Array.from({ length: 50 }, (_, i) => ({ data: { i }, type: `t.${i % 3}` }));
    const res = await stack.post("/v1/channels/batch/messages", { messages });
    expect(res.status).toBe(201);
    expect(stack.bridge.stats.requests - before).toBe(1);
    const { ids } = (await res.json()) as { ids: string[] };
    expect(ids).toHaveLength(50);
    expect([...ids].sort(compareIds)).toEqual(ids);
    const entries = await stack.redis.xrange(stack.keys.channel("batch"), "-", "+");
    expect(entries.map(([id]) => id)).toEqual(ids);
    expect(entries.map(([, f]) => JSON.parse(f[3]!).i)).toEqual(messages.map((_, i) => i));
  });

  it("costs N + 1 commands for N messages on a channel without subscriptions, its roster known", async () => {
    await stack.post("/v1/channels/batch-cost/messages", { data: "first" });
    const messages = Array.from({ length: 10 }, (_, i) => ({ data: i }));
    const counted = await countCommands(stack.redis, async () => {
      await stack.post("/v1/channels/batch-cost/messages", { messages });
    });
    expect(counted.total).toBe(11);
  });

  it("accepts 1000 messages and refuses 1001, writing nothing", async () => {
    const ok = await stack.post("/v1/channels/big-batch/messages", {
      messages: Array.from({ length: 1000 }, (_, i) => ({ data: i })),
    });
    expect(ok.status).toBe(201);
    const tooMany = await stack.post("/v1/channels/big-batch/messages", {
      messages: Array.from({ length: 1001 }, (_, i) => ({ data: i })),
    });
    expect(tooMany.status).toBe(400);
    expect(await xlen("big-batch")).toBe(1000);
  });
});

describe("Idempotency-Key", () => {
  it("returns the first id with 200 on a repeat and adds nothing", async () => {
    const headers = { "idempotency-key": "order-7-created" };
    const first = await stack.post("/v1/channels/idem/messages", { data: 7 }, headers);
    expect(first.status).toBe(201);
    const repeat = await stack.post("/v1/channels/idem/messages", { data: 7 }, headers);
    expect(repeat.status).toBe(200);
    expect(repeat.headers.get("idempotent-replayed")).toBe("true");
    expect(await repeat.json()).toEqual(await first.json());
    expect(await xlen("idem")).toBe(1);
  });

  it("keeps the key for 24 hours", async () => {
    await stack.post("/v1/channels/idem-ttl/messages", { data: 1 }, { "idempotency-key": "k1" });
    const ttl = await stack.redis.ttl(stack.keys.idempotency("idem-ttl", "k1"));
    expect(ttl).toBeGreaterThan(24 * 3600 - 60);
    expect(ttl).toBeLessThanOrEqual(24 * 3600);
  });

  it("is scoped to the channel: the same key publishes once on each channel", async () => {
    const headers = { "idempotency-key": "same-key" };
    const a = await stack.post("/v1/channels/idem-a/messages", { data: "for a" }, headers);
    const b = await stack.post("/v1/channels/idem-b/messages", { data: "for b" }, headers);
    expect([a.status, b.status]).toEqual([201, 201]);
    const { id: idA } = (await a.json()) as { id: string };
    const { id: idB } = (await b.json()) as { id: string };
    expect(idA).not.toBe(idB);
    expect(await history("idem-a")).toEqual([{ id: idA, data: "for a" }]);
    expect(await history("idem-b")).toEqual([{ id: idB, data: "for b" }]);
  });

  it("still deduplicates a repeat on each channel after the other channel used the key", async () => {
    const headers = { "idempotency-key": "shared-key" };
    const a = await stack.post("/v1/channels/idem-d/messages", { data: "for d" }, headers);
    const b = await stack.post("/v1/channels/idem-e/messages", { data: "for e" }, headers);
    const repeatA = await stack.post("/v1/channels/idem-d/messages", { data: "for d" }, headers);
    const repeatB = await stack.post("/v1/channels/idem-e/messages", { data: "for e" }, headers);
    expect([repeatA.status, repeatB.status]).toEqual([200, 200]);
    expect(await repeatA.json()).toEqual(await a.json());
    expect(await repeatB.json()).toEqual(await b.json());
    expect([await xlen("idem-d"), await xlen("idem-e")]).toEqual([1, 1]);
  });

  it("treats different keys as different publishes", async () => {
    await stack.post("/v1/channels/idem-c/messages", { data: 1 }, { "idempotency-key": "a" });
    await stack.post("/v1/channels/idem-c/messages", { data: 1 }, { "idempotency-key": "b" });
    expect(await xlen("idem-c")).toBe(2);
  });
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
