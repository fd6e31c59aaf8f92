import { describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { changedKeys, keyspace } from "../helpers/keyspace.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  dueAt,
  getSubscription,
  pendingCount,
  publish,
  runPass,
  subscribe,
  waitUntil,
} from "../helpers/subscriptions.ts";

// Upstash refuses a write that would take a key past its record size ("ERR max single record
// size exceeded"; 100 MB there, 256 KiB here). Nothing may be half-written, lost, or left
// without a wake-up when it does.
const RECORD_BYTES = 256 * 1024;
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "storage",
  {
    vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "100", RETRY_MAX_MS: "200" },
    bridge: { maxRecordBytes: RECORD_BYTES },
  },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const post = (body: unknown) => stack.post(`/v1/channels/${channel}/messages`, body);
const length = () => stack.redis.xlen(stack.keys.channel(channel));
const pad = (kib: number) => "x".repeat(kib * 1024);

/**
 * Writes `kib` KiB into a stream directly in Redis (past the bridge's checks), in 50 KiB entries:
 * with RECORD_BYTES at 256 KiB, 200 leaves room for about 50 KiB more.
 */
async function fill(key: string, kib = 200) {
  for (let i = 0; i < kib / 50; i++) await stack.redis.xadd(key, "*", "d", JSON.stringify(pad(50)));
}

describe("a channel whose stream is at its record size", () => {
  it("answers a publish 507 storage_full naming the channel, and stores nothing", async () => {
    await publish(stack, channel, [{ data: "first" }]);
    await fill(stack.keys.channel(channel));
    const before = await length();
    const res = await post({ data: pad(100) });
    expect(res.status).toBe(507);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("storage_full");
    expect(error.message).toContain(`"${channel}"`);
    expect(await length()).toBe(before);
  });

  it("stores none of a batch that does not fit, and wakes no subscriber for it", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: "fits" }]);
    await runPass(stack);
    await fill(stack.keys.channel(channel));
    const before = await length();
    // The first two fit; the third takes the stream past the limit.
    const res = await post({ messages: [10, 20, 40, 40].map((kib) => ({ data: pad(kib) })) });
    expect(res.status).toBe(507);
    expect(await length()).toBe(before);
    expect(await dueAt(stack, `wake:${channel}/sub`)).toBeNull();
  });
});

describe("dead letters Redis refuses to store", () => {
  it("stay pending, are retried, and are parked once there is room", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    const [id] = await publish(stack, channel, [{ data: "doomed" }]);
    await fill(stack.keys.deadLetters(channel, "sub"), 300);
    const parked = () => stack.redis.xlen(stack.keys.deadLetters(channel, "sub"));
    const before = await parked();

    await runPass(stack);
    expect(await pendingCount(stack, channel, "sub")).toBe(1);
    expect(await parked()).toBe(before);
    const view = await getSubscription(stack, channel, "sub");
    expect(view.lastError).toMatch(/could not be dead-lettered: ERR max single record size/);
    expect(await dueAt(stack, `retry:${channel}/sub`)).not.toBeNull();

    const purged = await stack.api(`/v1/channels/${channel}/subscriptions/sub/dead-letters`, {
      method: "DELETE",
    });
    expect(purged.status).toBe(200);
    await deliverUntil(stack, channel, async () => (await parked()) === 1, "the message parked");
    const [[, fields]] = (await stack.redis.xrange(
      stack.keys.deadLetters(channel, "sub"),
      "-",
      "+",
    )) as [[string, string[]]];
    expect(fields[fields.indexOf("o") + 1]).toBe(id);
    expect(await pendingCount(stack, channel, "sub")).toBe(0);
  });
});

describe("a redrive Redis refuses", () => {
  it("answers 507, and moves each dead letter either whole or not at all", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    const ids = await publish(stack, channel, [{ data: pad(60) }, { data: pad(60) }]);
    await runPass(stack);
    const dlq = stack.keys.deadLetters(channel, "sub");
    const redrive = stack.keys.redrive(channel, "sub");
    expect(await stack.redis.xlen(dlq)).toBe(2);
    await fill(redrive, 150); // room for the first, not the second
    const res = await stack.post(
      `/v1/channels/${channel}/subscriptions/sub/dead-letters/redrive`,
      undefined,
    );
    expect(res.status).toBe(507);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error).toMatchObject({ code: "storage_full" });
    expect(error.message).toMatch(/^redrove 1 dead letter/);
    const original = (entries: [string, string[]][]) =>
      entries.flatMap(([, f]) => (f.includes("o") ? [f[f.indexOf("o") + 1]!] : []));
    const left = original(await stack.redis.xrange(dlq, "-", "+"));
    const moved = original(await stack.redis.xrange(redrive, "-", "+"));
    expect(moved).toEqual([ids[0]]);
    expect(left).toEqual([ids[1]]);
  });
});

describe("delayed messages Redis refuses to store or to let in", () => {
  const waiting = () => stack.redis.zcard(stack.keys.delayed(channel));

  it("answers a delayed publish 507 and stores nothing, not even the new channel", async () => {
    // The channel's delayed messages at their record size (written past the bridge's checks).
    await stack.redis.hset(stack.keys.delayedMessages(channel), "filler", pad(200));
    const before = await keyspace(stack.redis);
    const res = await post({ data: pad(100), delayMs: 60_000 });
    expect(res.status).toBe(507);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("storage_full");
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
  });

  it("stores none of a batch with messages for now when its delayed ones do not fit", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: "fits" }]);
    await runPass(stack);
    await stack.redis.hset(stack.keys.delayedMessages(channel), "filler", pad(200));
    const stream = stack.keys.channel(channel);
    // The stream's entries, not its DUMP: an XADD taken back by XDEL leaves its last id moved on.
    const before = await keyspace(stack.redis, (key) => key === stream);
    const entries = await stack.redis.xrange(stream, "-", "+");
    const res = await post({
      messages: [{ data: "now" }, { data: pad(100), delayMs: 60_000 }],
    });
    expect(res.status).toBe(507);
    expect(changedKeys(before, await keyspace(stack.redis, (key) => key === stream))).toEqual([]);
    expect(await stack.redis.xrange(stream, "-", "+")).toEqual(entries);
  });

  it("keeps one waiting while its channel has no room for it, and lets it in once there is", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const due = Date.now() + 300;
    const res = await post({ data: pad(100), notBefore: new Date(due).toISOString() });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await fill(stack.keys.channel(channel));
    await waitUntil(due);
    await runPass(stack);
    expect(await waiting()).toBe(1);
    expect(await dueAt(stack, `delay:${channel}`)).toBe(due); // still due: the next run tries again
    await stack.redis.xtrim(stack.keys.channel(channel), "MAXLEN", 0);
    await runPass(stack); // lets it in
    expect(await waiting()).toBe(0);
    await deliverUntil(stack, channel, () => receiver.messages().length === 1, "delivered");
    expect(receiver.messages()[0]!.delayedId).toBe(id);
  });
});
