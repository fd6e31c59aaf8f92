import { describe, expect, it, onTestFinished } from "vitest";
import { timerMember } from "../../shared/keys.ts";
import { ENTER_LUA } from "../../shared/lua/enter.ts";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { loadScripts, nth, runsScript, watch } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { pullOnce } from "../helpers/pull.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { runPass, sleep, subscribe } from "../helpers/subscriptions.ts";

// Delayed messages entering their channel without a delivery queue: the cron's run (its scheduled
// time passed in, so no test waits for a minute) or a pass (POST /v1/deliver) finds the channel's
// timer due and lets them in (lua/enter.ts). No kick here, and no trim comes due: each step costs
// exactly what it says, and deliveries happen in the passes a test runs.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "delayed",
  { vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "3600000", EVENTS_CHANNEL: "none" } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

const MINUTE = 60_000;
const cron = (at: number) =>
  stack.harness.getWorker().scheduled({ scheduledTime: new Date(at), cron: "* * * * *" });
const timerAt = async () => {
  const score = await stack.redis.zscore(stack.keys.due(), timerMember("delay", channel));
  return score === null ? null : Number(score);
};
/** The channel's entries that hold a delayed message's id (`m`), as [delayed id, entry id]. */
async function entered(): Promise<[string, string][]> {
  const entries = await stack.redis.xrange(stack.keys.channel(channel), "-", "+");
  return entries.flatMap(([id, fields]) => {
    const m = fields.indexOf("m");
    return m >= 0 && m % 2 === 0 ? [[fields[m + 1]!, id] as [string, string]] : [];
  });
}
/** Publishes them in batches of at most 1,000; their ids. */
async function publishDelayed(
  messages: { data: unknown; type?: string; notBefore?: string; delayMs?: number }[],
) {
  const ids: string[] = [];
  for (let i = 0; i < messages.length; i += 1000) {
    const batch = { messages: messages.slice(i, i + 1000) };
    const res = await stack.post(`/v1/channels/${channel}/messages`, batch);
    expect(res.status, await res.clone().text()).toBe(201);
    ids.push(...((await res.json()) as { ids: string[] }).ids);
  }
  return ids;
}
const at = (ms: number) => new Date(ms).toISOString();
/** Passes until the receiver has `count` messages (a pass delivers a budget's worth at most). */
async function deliverAll(count: number) {
  for (let i = 0; i < 20 && receiver.messages().length < count; i++) await runPass(stack);
  expect(receiver.messages()).toHaveLength(count);
}

describe("the cron, without a queue", () => {
  it("lets each message in when its time comes, and costs one command while none is due", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const t0 = Date.now() + 10 * MINUTE;
    const ids = await publishDelayed([
      { data: "second", notBefore: at(t0 + MINUTE) },
      { data: "first", notBefore: at(t0), type: "reminder" },
    ]);
    await loadScripts(stack, [ENTER_LUA]);
    expect(await timerAt()).toBe(t0);

    const idle = await countCommands(stack.redis, () => cron(t0 - 1));
    expect(idle.byCommand).toEqual({ zrange: 1 });
    expect(await entered()).toEqual([]);

    await cron(t0);
    expect((await entered()).map(([m]) => m)).toEqual([ids[1]]);
    expect(await timerAt()).toBe(t0 + MINUTE);
    await deliverAll(1);
    expect(receiver.messages()[0]).toMatchObject({
      delayedId: ids[1],
      type: "reminder",
      data: "first",
      attempt: 1,
    });
    // Its id in the channel is the entry's, which history shows with the delayed id beside it.
    const entryId = (await entered())[0]![1];
    expect(receiver.messages()[0]!.id).toBe(entryId);
    const history = await (await stack.api(`/v1/channels/${channel}/messages`)).json();
    expect(history).toMatchObject({
      messages: [{ id: entryId, delayedId: ids[1], data: "first" }],
    });

    await cron(t0 + MINUTE);
    expect((await entered()).map(([m]) => m)).toEqual([ids[1], ids[0]]);
    expect(await timerAt()).toBeNull();
    await deliverAll(2);
    expect(receiver.messages().map((m) => m.delayedId)).toEqual([ids[1], ids[0]]);
  });

  it("hands them to pull subscribers too, with their delayed id", async () => {
    await subscribe(stack, channel, { name: "pull", mode: "pull" });
    const t0 = Date.now() + MINUTE;
    const [id] = await publishDelayed([{ data: "pull me", notBefore: at(t0) }]);
    expect((await pullOnce(stack, channel, "pull")).messages).toEqual([]);
    await cron(t0);
    const { messages } = await pullOnce(stack, channel, "pull");
    expect(messages).toMatchObject([{ delayedId: id, data: "pull me", attempt: 1 }]);
  });
});

describe("what letting delayed messages in costs", () => {
  it("is the cron's ZRANGE and 4 commands when the timer finds nothing due (its message cancelled)", async () => {
    const t0 = Date.now() + MINUTE;
    const [first] = await publishDelayed([
      { data: 1, notBefore: at(t0) },
      { data: 2, notBefore: at(t0 + MINUTE) },
    ]);
    const cancelled = await stack.api(`/v1/channels/${channel}/delayed/${first}`, {
      method: "DELETE",
    });
    expect(cancelled.status).toBe(204);
    await loadScripts(stack, [ENTER_LUA]);
    const counted = await countCommands(stack.redis, () => cron(t0));
    // The cron's ZRANGE; the script, what is due (nothing), the earliest left, the timer to it.
    expect(counted.byCommand).toEqual({ zrange: 3, evalsha: 1, zadd: 1 });
    expect(await timerAt()).toBe(t0 + MINUTE);
    expect(await entered()).toEqual([]);
  });

  it("is one XADD per message, one HMGET per 100, and 7 more per run of up to 500 (no subscriber)", async () => {
    const t0 = Date.now() + MINUTE;
    const messages = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ data: i, notBefore: at(t0) }));
    await publishDelayed(messages(1000));
    await publishDelayed(messages(500));
    await loadScripts(stack, [ENTER_LUA]);
    const counted = await countCommands(stack.redis, () => cron(t0));
    // The cron's ZRANGE; three runs of 500, each: the script, what is due, the messages (HMGET
    // per 100), their removal (ZREM, HDEL), the wake-up's HGETALL (nobody to wake), the earliest
    // left and the timer (ZADD, ZADD, then ZREM: none left).
    expect(counted.byCommand).toEqual({
      zrange: 1 + 3 * 2,
      evalsha: 3,
      hmget: 15,
      xadd: 1500,
      zrem: 3 + 1,
      hdel: 3,
      hgetall: 3,
      zadd: 2,
    });
    expect(counted.total).toBe(1 + 3 * 7 + 15 + 1500);
    expect((await entered()).length).toBe(1500);
    expect(await timerAt()).toBeNull();
  });

  it("leaves an idle cron at one command with 1,000 messages waiting", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const later = Date.now() + 30 * MINUTE;
    await publishDelayed(
      Array.from({ length: 1000 }, (_, i) => ({ data: i, notBefore: at(later) })),
    );
    const counted = await countCommands(stack.redis, () => cron(Date.now()));
    expect(counted.byCommand).toEqual({ zrange: 1 });
  });
});

describe("letting messages in, when things go wrong", () => {
  it("lets each in once when two timers run at once", async () => {
    const t0 = Date.now() + MINUTE;
    const ids = await publishDelayed(
      Array.from({ length: 1500 }, (_, i) => ({ data: i, notBefore: at(t0 + (i % 3)) })),
    );
    await Promise.all([cron(t0 + 5), cron(t0 + 5), cron(t0 + 5)]);
    const got = (await entered()).map(([m]) => m);
    expect(got.length).toBe(1500);
    expect(new Set(got)).toEqual(new Set(ids));
    expect(await stack.redis.zcard(stack.keys.delayed(channel))).toBe(0);
  });

  it("lets each in once when the reply of a run is lost", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const t0 = Date.now() + MINUTE;
    const ids = await publishDelayed(
      Array.from({ length: 10 }, (_, i) => ({ data: i, notBefore: at(t0) })),
    );
    await loadScripts(stack, [ENTER_LUA]);
    const dropped = stack.bridge.faults.injected["drop-reply"];
    onTestFinished(
      stack.bridge.faults.add({
        kind: "drop-reply",
        match: runsScript(ENTER_LUA, stack.keys.delayed(channel)),
        times: 1,
      }),
    );
    await cron(t0);
    expect(stack.bridge.faults.injected["drop-reply"]).toBe(dropped + 1);
    expect((await entered()).map(([m]) => m)).toEqual(ids);
    await deliverAll(10);
    expect(receiver.messages().map((m) => m.delayedId)).toEqual(ids);
  });

  it("loses and duplicates nothing when the Worker is killed while it lets them in", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 100 });
    const t0 = Date.now() + 1000;
    const ids = await publishDelayed(
      Array.from({ length: 1500 }, (_, i) => ({ data: i, notBefore: at(t0) })),
    );
    await loadScripts(stack, [ENTER_LUA, PUBLISH_LUA]);
    // The second run (the last 500) is held at the bridge, and runs there after the Worker died.
    const isEnter = runsScript(ENTER_LUA, stack.keys.delayed(channel));
    const runs = watch(stack, isEnter);
    onTestFinished(
      stack.bridge.faults.add({ kind: "delay", delayMs: 1000, match: nth(isEnter, 2), times: 1 }),
    );
    await until("due", async () => Date.now() > t0);
    const passing = runPass(stack).catch(() => {});
    await until("the second run sent", async () => runs() === 2);
    await stack.restartWorker();
    await passing;
    const waiting = () => stack.redis.zcard(stack.keys.delayed(channel));
    await until("the held run done", async () => (await waiting()) === 500);
    // The timer is still due: the next pass lets the last 500 in.
    await runPass(stack);
    expect(await waiting()).toBe(0);
    const got = (await entered()).map(([m]) => m);
    expect(got.length).toBe(1500);
    expect(new Set(got)).toEqual(new Set(ids));
    await deliverAll(1500);
    expect(new Set(receiver.messages().map((m) => m.delayedId))).toEqual(new Set(ids));
    await sleep(100);
    expect(receiver.messages()).toHaveLength(1500);
  }, 30_000);
});
