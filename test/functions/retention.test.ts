import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { RETENTION_LUA } from "../../shared/lua/retention.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { until } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Retention: a channel's stream is trimmed as publishes come (lua/trim.ts), never below what a
// subscription has not acknowledged, unless it fell behind by more than MAX_UNDELIVERED_AGE_MS
// (14 days here; retention-expiry.test.ts shows expiry). A trim may run at every publish
// (TRIM_MIN_INTERVAL_MS 0);
// no kick, so delivery happens in the passes a test runs (and after a resume or replay). The cost
// test runs first, while nothing else runs behind its back.
let stack: Stack;
let receiver: TestReceiver;
beforeAll(async () => {
  stack = await startStack({
    vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "0" },
  });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

const WEEK_MS = 7 * 24 * 3_600_000;

interface ChannelView {
  length: number;
  firstId: string | null;
  retention: { maxAgeMs: number | null; maxMessages: number | null };
  retentionIsDefault: boolean;
}

async function channel(name: string) {
  const res = await stack.api(`/v1/channels/${name}`);
  expect(res.status).toBe(200);
  return (await res.json()) as ChannelView;
}

async function patch(name: string, body: unknown) {
  return stack.api(`/v1/channels/${name}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** Publishes `count` messages, 1,000 to a request. */
async function publishMany(name: string, count: number, from = 0) {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1000) {
    const n = Math.min(1000, count - i);
    const data = Array.from({ length: n }, (_, j) => ({ data: { n: from + i + j } }));
    ids.push(...(await publish(stack, name, data)));
  }
  return ids;
}

const xlen = (name: string) => stack.redis.xlen(stack.keys.channel(name));

describe("cost", () => {
  it("a publish costs 2 commands, and one that finds a trim due adds HGET, XLEN, XTRIM, HSET and ZADD", async () => {
    // The first reads the channel's roster (HGETALL: shared/roster.ts); the isolate keeps it.
    await publish(stack, "cost", [{ data: 1 }]);
    // The first publish started the channel's trim clock at now + 0: the next one trims. The
    // ZADD (LT) keeps the channel's sweep due within a gap, so that it is trimmed if it falls
    // silent (worker/sweep.ts): one command per trim, none per publish.
    const trimming = await countCommands(stack.redis, () => publish(stack, "cost", [{ data: 2 }]));
    // The roster's copy says a trim is due: the stored clock is asked first (HGET).
    expect(trimming.byCommand).toEqual({
      evalsha: 1,
      xadd: 1,
      hget: 1,
      xlen: 1,
      xtrim: 1,
      hset: 1,
      zadd: 1,
    });
    // The next trim waits for about 1,000 more messages at the rate seen since.
    const plain = await countCommands(stack.redis, () => publish(stack, "cost", [{ data: 3 }]));
    expect(plain.byCommand).toEqual({ evalsha: 1, xadd: 1 });
  });
});

describe("PATCH /v1/channels/{channel}", () => {
  it("sets the retention GET shows; left-out fields keep their value, null lifts a limit", async () => {
    await publish(stack, "settings", [{ data: 1 }]);
    expect(await channel("settings")).toMatchObject({
      retention: { maxAgeMs: WEEK_MS, maxMessages: null },
      retentionIsDefault: true,
    });
    const res = await patch("settings", { retention: { maxMessages: 5000 } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      retention: { maxAgeMs: WEEK_MS, maxMessages: 5000 },
      retentionIsDefault: false,
    });
    await patch("settings", { retention: { maxAgeMs: null } });
    expect((await channel("settings")).retention).toEqual({ maxAgeMs: null, maxMessages: 5000 });
  });

  it("refuses bad input with a JSON error naming the field, and changes nothing", async () => {
    await publish(stack, "bad-settings", [{ data: 1 }]);
    for (const body of [
      { retention: { maxMessages: 0 } },
      { retention: { maxAgeMs: 10 } },
      { retention: { maxMessages: "1000" } },
      { retention: { maxMessages: 10, extra: 1 } },
      { retention: null },
      {},
    ]) {
      const res = await patch("bad-settings", body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const error = ((await res.json()) as { error: { code: string } }).error;
      expect(error.code).toBe("invalid_request");
    }
    expect((await channel("bad-settings")).retentionIsDefault).toBe(true);
  });

  it("answers 404 for a channel that does not exist, and creates nothing", async () => {
    const res = await patch("no-such-channel", { retention: { maxMessages: 10 } });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "channel_not_found",
    );
    expect(await stack.redis.exists(stack.keys.subscriptions("no-such-channel"))).toBe(0);
  });
});

describe("maxMessages", () => {
  it("keeps a delivered channel within 2x of it: 20,000 published and acknowledged, 1,000 kept", async () => {
    await subscribe(stack, "bounded", { name: "sub", url: receiver.url, batchSize: 100 });
    await patch("bounded", { retention: { maxMessages: 1000 } });
    const before = receiver.acceptedIds().length;
    for (let round = 0; round < 20; round++) {
      await publishMany("bounded", 1000, round * 1000);
      expect((await runPass(stack)).delivered).toBe(1000);
      expect(await xlen("bounded")).toBeLessThanOrEqual(2000);
    }
    expect(receiver.acceptedIds().length - before).toBe(20_000);
    // The oldest kept is what history and replay reach back to.
    const view = await channel("bounded");
    expect(view.length).toBeGreaterThanOrEqual(1000);
    const [oldest] = await stack.redis.xrange(stack.keys.channel("bounded"), "-", "+", "COUNT", 1);
    expect(view.firstId).toBe(oldest?.[0]);
  }, 120_000);

  it("keeps what a paused subscription has not acknowledged, until it resumes and acks", async () => {
    await subscribe(stack, "paused", { name: "sub", url: receiver.url, batchSize: 100 });
    await patch("paused", { retention: { maxMessages: 1000 } });
    // It has delivered a message: its floor is recent, nowhere near MAX_UNDELIVERED_AGE_MS.
    await publish(stack, "paused", [{ data: "first" }]);
    expect((await runPass(stack)).delivered).toBe(1);
    await stack.api("/v1/channels/paused/subscriptions/sub", {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: true }),
    });
    const ids = await publishMany("paused", 5000);
    expect(await xlen("paused")).toBe(5001);
    await stack.api("/v1/channels/paused/subscriptions/sub", {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: false }),
    });
    // Resuming delivers at once (in the background), and passes help.
    await until(
      "every message delivered",
      async () => {
        await runPass(stack);
        const received = new Set(receiver.acceptedIds());
        return ids.every((id) => received.has(id));
      },
      30_000,
    );
    await publishMany("paused", 1000, 5000);
    expect(await xlen("paused")).toBeLessThanOrEqual(2000);
  }, 60_000);

  it("trims a channel without subscriptions as it is published to", async () => {
    await publish(stack, "nobody", [{ data: 0 }]);
    await patch("nobody", { retention: { maxMessages: 1000 } });
    await publishMany("nobody", 10_000);
    expect(await xlen("nobody")).toBeLessThanOrEqual(2000);
    expect(await xlen("nobody")).toBeGreaterThanOrEqual(1000);
  });
});

describe("ids past what a Lua number holds exactly", () => {
  // Lua numbers are doubles: exact to 2^53 only. An id part past that must still compare and
  // step as the decimal it is, or the trim's script fails (a 500 for every publish).
  it.each([
    ["a subscription starting at an id whose ms part is past 2^53", "99999999999999999-0"],
    ["a subscription starting at an id whose sequence is past 2^53", "1-99999999999999999"],
    ["a subscription starting at the largest id", "18446744073709551615-18446744073709551615"],
  ])("trims and publishes with %s", async (_, from) => {
    const name = `big-${from.length}-${from.slice(0, 2)}`;
    await subscribe(stack, name, { name: "sub", mode: "pull", from });
    await patch(name, { retention: { maxMessages: 1 } });
    await publishMany(name, 10);
    const res = await stack.post(`/v1/channels/${name}/messages`, { data: "after" });
    expect(res.status, await res.clone().text()).toBe(201);
    expect(await xlen(name)).toBe(11); // kept: the subscription has not acknowledged them
  });
});

describe("replay", () => {
  it("reaches back only as far as what is kept, and says from where", async () => {
    await subscribe(stack, "replayed", { name: "sub", url: receiver.url, batchSize: 100 });
    await patch("replayed", { retention: { maxMessages: 1000 } });
    const ids = await publishMany("replayed", 5000);
    while ((await runPass(stack)).delivered > 0);
    await publishMany("replayed", 1000, 5000);
    const { firstId } = await channel("replayed");
    expect(firstId).not.toBe(ids[0]);
    const res = await stack.post("/v1/channels/replayed/subscriptions/sub/replay", {
      from: ids[0],
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { replayFrom: string }).replayFrom).toBe(firstId);
  }, 60_000);
});

describe("a lost reply", () => {
  it("on a publish that trims: stored once, trimmed as it should be", async () => {
    await publish(stack, "lost-trim", [{ data: 0 }]);
    await patch("lost-trim", { retention: { maxMessages: 1000 } });
    await publishMany("lost-trim", 3000);
    await loadScripts(stack, [PUBLISH_LUA]);
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: runsScript(PUBLISH_LUA, stack.keys.channel("lost-trim")),
      times: 1,
    });
    let ids: string[] = [];
    const injected = await injectedDuring(stack, async () => {
      ids = await publishMany("lost-trim", 1000, 3000);
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(new Set(ids).size).toBe(1000);
    const kept = await stack.redis.xrange(stack.keys.channel("lost-trim"), ids[0]!, "+");
    expect(kept.map(([id]) => id)).toEqual(ids);
    expect(await xlen("lost-trim")).toBeLessThanOrEqual(2000);
  });

  it("on a PATCH: the retention is set once, and a deleted channel is not brought back", async () => {
    await publish(stack, "lost-patch", [{ data: 0 }]);
    await loadScripts(stack, [RETENTION_LUA]);
    stack.bridge.faults.add({ kind: "drop-reply", match: runsScript(RETENTION_LUA), times: 1 });
    const res = await patch("lost-patch", { retention: { maxMessages: 3000 } });
    expect(res.status).toBe(200);
    expect((await channel("lost-patch")).retention).toEqual({
      maxAgeMs: WEEK_MS,
      maxMessages: 3000,
    });
    await stack.redis.del(stack.keys.channel("lost-patch"), stack.keys.subscriptions("lost-patch"));
    expect((await patch("lost-patch", { retention: { maxMessages: 10 } })).status).toBe(404);
    expect(await stack.redis.exists(stack.keys.subscriptions("lost-patch"))).toBe(0);
  });
});
