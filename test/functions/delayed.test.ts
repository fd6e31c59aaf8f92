import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { timerMember } from "../../shared/keys.ts";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { loadScripts, runsScript } from "../helpers/faults.ts";
import { as, createKey, errorOf } from "../helpers/keys.ts";
import { changedKeys, keyspace } from "../helpers/keyspace.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { until } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { runPass } from "../helpers/subscriptions.ts";

// Delayed messages, as the API shows them: published (stored at once, in the channel's delayed
// set, not its stream), listed, cancelled. Nothing here lets one in: no kick, no pass, no queue
// (test/worker/delayed.test.ts delivers them).
let stack: Stack;
let counter = 0;
let channel: string;
beforeAll(async () => {
  // No trim comes due (the command counts are the publish's own).
  stack = await startStack({ vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "3600000" } });
  await loadScripts(stack, [PUBLISH_LUA]);
});
afterAll(() => stack?.stop());
const next = () => {
  channel = `delayed-${++counter}`;
  return channel;
};

const HOUR = 3_600_000;
const DELAYED_ID = /^d[0-9a-f]{16}-\d+$/;
const STREAM_ID = /^\d+-\d+$/;

interface Delayed {
  id: string;
  type: string | null;
  data: unknown;
  notBefore: string;
  publishedAt: string;
  traceparent?: string;
}

const publishRaw = (ch: string, body: unknown, headers: Record<string, string> = {}) =>
  stack.post(`/v1/channels/${ch}/messages`, body, headers);
async function publishOne(ch: string, body: Record<string, unknown>): Promise<string> {
  const res = await publishRaw(ch, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}
async function publishBatch(ch: string, body: Record<string, unknown>): Promise<string[]> {
  const res = await publishRaw(ch, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { ids: string[] }).ids;
}
async function page(ch: string, query = ""): Promise<{ messages: Delayed[]; next: string | null }> {
  const res = await stack.api(`/v1/channels/${ch}/delayed${query}`);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { messages: Delayed[]; next: string | null };
}
const cancel = (ch: string, id: string) =>
  stack.api(`/v1/channels/${ch}/delayed/${id}`, { method: "DELETE" });
const history = async (ch: string) => {
  const res = await stack.api(`/v1/channels/${ch}/messages`);
  return ((await res.json()) as { messages: { id: string; data: unknown }[] }).messages;
};
const timerAt = async (ch: string) => {
  const score = await stack.redis.zscore(stack.keys.due(), timerMember("delay", ch));
  return score === null ? null : Number(score);
};

describe("publishing a delayed message", () => {
  it("answers 201 with its delayed id at once and keeps it out of the channel until its time", async () => {
    const ch = next();
    const before = Date.now();
    const id = await publishOne(ch, {
      data: { remind: "in an hour" },
      type: "reminder",
      delayMs: HOUR,
    });
    expect(id).toMatch(DELAYED_ID);
    // The channel exists (it is listed, deletable), and holds nothing yet.
    expect(await stack.redis.xlen(stack.keys.channel(ch))).toBe(0);
    expect(await stack.redis.sismember(stack.keys.channels(), ch)).toBe(1);
    expect((await stack.api(`/v1/channels/${ch}`)).status).toBe(200);
    expect(await history(ch)).toEqual([]);
    const { messages, next: cursor } = await page(ch);
    expect(cursor).toBeNull();
    expect(messages).toEqual([
      {
        id,
        type: "reminder",
        data: { remind: "in an hour" },
        notBefore: expect.any(String),
        publishedAt: expect.any(String),
      },
    ]);
    const publishedAt = Date.parse(messages[0]!.publishedAt);
    expect(publishedAt).toBeGreaterThanOrEqual(before);
    expect(publishedAt).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(messages[0]!.notBefore)).toBe(publishedAt + HOUR);
    // Its timer is in the schedule at its time: the cron finds it then, not before.
    expect(await timerAt(ch)).toBe(publishedAt + HOUR);
  });

  it("takes notBefore as an RFC 3339 time with Z or an offset", async () => {
    const ch = next();
    const at = new Date(Math.ceil(Date.now() / 1000) * 1000 + 2 * HOUR);
    const local = new Date(at.getTime() + 2 * HOUR).toISOString().replace("Z", "+02:00");
    await publishOne(ch, { data: 1, notBefore: at.toISOString() });
    await publishOne(ch, { data: 2, notBefore: local });
    // The same moment: both due then (in the order of their ids, which are random).
    const { messages } = await page(ch);
    expect(messages.map((m) => [m.data, m.notBefore]).sort()).toEqual([
      [1, at.toISOString()],
      [2, at.toISOString()],
    ]);
  });

  it("delays a batch's messages by the batch's delay, unless one gives its own; 0 or a past time is now", async () => {
    const ch = next();
    const soon = new Date(Date.now() + HOUR / 2).toISOString();
    const ids = await publishBatch(ch, {
      delayMs: HOUR,
      messages: [
        { data: "batch's delay" },
        { data: "now", delayMs: 0 },
        { data: "own time", notBefore: soon },
        { data: "a past time: now", notBefore: "2020-01-01T00:00:00Z" },
      ],
    });
    expect(ids[0]).toMatch(DELAYED_ID);
    expect(ids[1]).toMatch(STREAM_ID);
    expect(ids[2]).toMatch(DELAYED_ID);
    expect(ids[3]).toMatch(STREAM_ID);
    expect(new Set(ids).size).toBe(4);
    expect((await history(ch)).map((m) => [m.id, m.data])).toEqual([
      [ids[1], "now"],
      [ids[3], "a past time: now"],
    ]);
    // Earliest due first.
    const { messages } = await page(ch);
    expect(messages.map((m) => [m.id, m.data])).toEqual([
      [ids[2], "own time"],
      [ids[0], "batch's delay"],
    ]);
    expect(messages[0]!.notBefore).toBe(soon);
  });

  it("keeps the publish's trace context with the message", async () => {
    const ch = next();
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const res = await publishRaw(
      ch,
      { data: 1, delayMs: HOUR },
      { traceparent, tracestate: "vendor=x" },
    );
    expect(res.status).toBe(201);
    const [message] = (await page(ch)).messages;
    expect(message).toMatchObject({ traceparent, tracestate: "vendor=x" });
  });
});

describe("a publish that breaks a rule of delays", () => {
  const cases: { rule: string; body: Record<string, unknown>; message: string; code?: string }[] = [
    {
      rule: "a message gives delayMs or notBefore, not both",
      body: { data: 1, delayMs: 1000, notBefore: new Date(Date.now() + HOUR).toISOString() },
      message: 'body: give "delayMs" or "notBefore", not both',
    },
    {
      rule: "a batch gives delayMs or notBefore, not both",
      body: { messages: [{ data: 1 }], delayMs: 1, notBefore: "2030-01-01T00:00:00Z" },
      message: 'body: give "delayMs" or "notBefore", not both',
    },
    {
      rule: "a batch's message gives delayMs or notBefore, not both",
      body: { messages: [{ data: 1 }, { data: 2, delayMs: 1, notBefore: "2030-01-01T00:00:00Z" }] },
      message: 'body.messages[1]: give "delayMs" or "notBefore", not both',
    },
    {
      rule: "delayMs is at most 7 days",
      body: { data: 1, delayMs: 7 * 24 * HOUR + 1 },
      message: "body.delayMs:",
    },
    { rule: "delayMs is not negative", body: { data: 1, delayMs: -1 }, message: "body.delayMs:" },
    { rule: "delayMs is whole", body: { data: 1, delayMs: 1.5 }, message: "body.delayMs:" },
    {
      rule: "notBefore is an RFC 3339 time",
      body: { data: 1, notBefore: "tomorrow" },
      message: "body.notBefore:",
    },
    {
      rule: "notBefore has its offset (a local time is no moment)",
      body: { data: 1, notBefore: "2030-01-01T00:00:00" },
      message: "body.notBefore:",
    },
    {
      rule: "notBefore is at most 7 days ahead",
      body: { data: 1, notBefore: new Date(Date.now() + 8 * 24 * HOUR).toISOString() },
      message: "body.notBefore: is more than 7 days",
    },
    {
      rule: "a batch's notBefore is at most 7 days ahead",
      body: {
        messages: [{ data: 1 }],
        notBefore: new Date(Date.now() + 8 * 24 * HOUR).toISOString(),
      },
      message: "body.notBefore: is more than 7 days",
    },
    {
      rule: "a batch's message's notBefore is at most 7 days ahead",
      body: {
        messages: [
          { data: 1 },
          { data: 2, notBefore: new Date(Date.now() + 8 * 24 * HOUR).toISOString() },
        ],
      },
      message: "body.messages[1].notBefore: is more than 7 days",
    },
  ];

  it.each(cases)("answers 400 and writes nothing: $rule", async ({ body, message, code }) => {
    const ch = next();
    await publishOne(ch, { data: "there before" });
    const before = await keyspace(stack.redis);
    const error = await errorOf(await publishRaw(ch, body), 400);
    expect(error.code).toBe(code ?? "invalid_request");
    expect(error.message).toContain(message);
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
  });

  it("answers 400 delay_past_retention, and writes nothing, for a delay longer than the channel keeps messages", async () => {
    const ch = next();
    await publishOne(ch, { data: "there before" });
    const patch = await stack.api(`/v1/channels/${ch}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ retention: { maxAgeMs: HOUR } }),
    });
    expect(patch.status).toBe(200);
    const before = await keyspace(stack.redis);
    for (const body of [
      { data: 1, delayMs: HOUR + 1 },
      { messages: [{ data: 1 }, { data: 2, delayMs: 2 * HOUR }] },
      { messages: [{ data: 1 }], notBefore: new Date(Date.now() + 2 * HOUR).toISOString() },
    ]) {
      const error = await errorOf(await publishRaw(ch, body), 400);
      expect(error.code).toBe("delay_past_retention");
      expect(error.message).toContain(`${HOUR} ms`);
    }
    expect(changedKeys(before, await keyspace(stack.redis))).toEqual([]);
    // As long as it keeps them is fine.
    expect((await publishRaw(ch, { data: 1, delayMs: HOUR })).status).toBe(201);
  });
});

describe("an Idempotency-Key on a delayed publish", () => {
  it("answers a repeat with the first ids, and stores nothing twice", async () => {
    const ch = next();
    const body = { messages: [{ data: 1 }, { data: 2, delayMs: 0 }], delayMs: HOUR };
    const first = await publishRaw(ch, body, { "idempotency-key": "once" });
    expect(first.status).toBe(201);
    const again = await publishRaw(ch, body, { "idempotency-key": "once" });
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(await first.json());
    expect((await page(ch)).messages).toHaveLength(1);
    expect(await history(ch)).toHaveLength(1);
  });
});

describe("a delayed publish whose reply is lost", () => {
  const loseOnce = (ch: string) => {
    const dropped = stack.bridge.faults.injected["drop-reply"];
    onTestFinished(
      stack.bridge.faults.add({
        kind: "drop-reply",
        match: runsScript(PUBLISH_LUA, stack.keys.channel(ch)),
        times: 1,
      }),
    );
    return () => stack.bridge.faults.injected["drop-reply"] - dropped;
  };

  it("is stored once, and answered with its id, when it has entered the channel before the repeat", async () => {
    const ch = next();
    await publishOne(ch, { data: "the channel exists" });
    const lost = loseOnce(ch);
    // The repeat (recover mode) waits at the bridge while the message comes due and enters.
    onTestFinished(
      stack.bridge.faults.add({
        kind: "delay",
        delayMs: 1500,
        match: runsScript(PUBLISH_LUA, stack.keys.channel(ch)),
        times: 1,
      }),
    );
    const publishing = publishOne(ch, { data: "soon", delayMs: 200 });
    await until("stored, and due", async () => {
      const at = await timerAt(ch);
      return at !== null && at <= Date.now();
    });
    await runPass(stack);
    const id = await publishing;
    expect(lost()).toBe(1);
    const entries = await stack.redis.xrange(stack.keys.channel(ch), "-", "+");
    expect(entries.filter(([, fields]) => fields.includes(id))).toHaveLength(1);
    expect((await page(ch)).messages).toEqual([]);
  });

  it("is stored once and answered with its ids (delayed messages with messages for now)", async () => {
    const ch = next();
    const lost = loseOnce(ch);
    const ids = await publishBatch(ch, {
      messages: [
        { data: "later", delayMs: HOUR },
        { data: "now" },
        { data: "later too", delayMs: HOUR },
      ],
    });
    expect(lost()).toBe(1);
    expect((await page(ch)).messages.map((m) => m.id)).toEqual([ids[0], ids[2]]);
    expect((await history(ch)).map((m) => m.id)).toEqual([ids[1]]);
  });
});

describe("cancelling a delayed message", () => {
  it("answers 204, and it is gone from the list; the same again answers 404", async () => {
    const ch = next();
    const [keep, drop] = await publishBatch(ch, {
      messages: [{ data: 1 }, { data: 2 }],
      delayMs: HOUR,
    });
    expect((await cancel(ch, drop!)).status).toBe(204);
    expect((await page(ch)).messages.map((m) => m.id)).toEqual([keep]);
    expect(await stack.redis.hexists(stack.keys.delayedMessages(ch), drop!)).toBe(0);
    const error = await errorOf(await cancel(ch, drop!), 404);
    expect(error.code).toBe("delayed_message_not_found");
  });

  it("answers 404 for an id nobody published, and 400 for one that is no delayed id", async () => {
    const ch = next();
    const id = await publishOne(ch, { data: 1 });
    expect((await errorOf(await cancel(ch, "d0123456789abcdef-0"), 404)).code).toBe(
      "delayed_message_not_found",
    );
    // A message published for now is in the channel already: its stream id is no delayed id.
    const error = await errorOf(await cancel(ch, id), 400);
    expect(error.message).toContain("path.delayedId: must be a delayed message's id");
  });

  it("costs 2 commands", async () => {
    const ch = next();
    const id = await publishOne(ch, { data: 1, delayMs: HOUR });
    const counted = await countCommands(stack.redis, async () => {
      expect((await cancel(ch, id)).status).toBe(204);
    });
    expect(counted.byCommand).toEqual({ zrem: 1, hdel: 1 });
  });
});

describe("listing delayed messages", () => {
  it("pages through them by due time, ties by id, each once, even when the last of a page goes meanwhile", async () => {
    const ch = next();
    // 25 messages: 5 due times, 5 messages each (ties), published in two requests.
    const base = Date.now() + HOUR;
    const at = (i: number) => new Date(base + (i % 5) * 1000).toISOString();
    const first = await publishBatch(ch, {
      messages: Array.from({ length: 15 }, (_, i) => ({ data: i, notBefore: at(i) })),
    });
    const second = await publishBatch(ch, {
      messages: Array.from({ length: 10 }, (_, i) => ({ data: 15 + i, notBefore: at(15 + i) })),
    });
    const all = [...first, ...second];
    const dueOf = new Map(all.map((id, i) => [id, at(i)]));
    const expected = [...all].sort((a, b) =>
      dueOf.get(a) === dueOf.get(b) ? (a < b ? -1 : 1) : dueOf.get(a)! < dueOf.get(b)! ? -1 : 1,
    );

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `?limit=4${cursor ? `&after=${encodeURIComponent(cursor)}` : ""}`;
      const got: { messages: Delayed[]; next: string | null } = await page(ch, query);
      seen.push(...got.messages.map((m) => m.id));
      cursor = got.next;
      // The last message of the third page is cancelled before the fourth is read: the fourth
      // starts after its place all the same.
      if (++pages === 3 && cursor) expect((await cancel(ch, seen.at(-1)!)).status).toBe(204);
    } while (cursor);
    expect(pages).toBe(7);
    expect(seen).toEqual(expected);
  });

  it("answers 404 channel_not_found for a channel that does not exist, and 400 for a cursor it never gave", async () => {
    expect((await errorOf(await stack.api("/v1/channels/never-made/delayed"), 404)).code).toBe(
      "channel_not_found",
    );
    const ch = next();
    await publishOne(ch, { data: 1, delayMs: HOUR });
    const error = await errorOf(await stack.api(`/v1/channels/${ch}/delayed?after=1-0`), 400);
    expect(error.message).toContain("query.after: must be the `next` of an earlier page");
  });
});

describe("who may delay, list and cancel", () => {
  it("takes publish to delay and cancel, read to list", async () => {
    const ch = next();
    const publisher = as(
      stack,
      (await createKey(stack, { name: `p-${ch}`, scopes: ["publish"] })).secret,
    );
    const reader = as(
      stack,
      (await createKey(stack, { name: `r-${ch}`, scopes: ["read"] })).secret,
    );
    const res = await publisher.post(`/v1/channels/${ch}/messages`, { data: 1, delayMs: HOUR });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    expect((await reader.api(`/v1/channels/${ch}/delayed`)).status).toBe(200);
    expect(
      (await errorOf(await publisher.api(`/v1/channels/${ch}/delayed`), 403)).message,
    ).toContain('"read"');
    expect(
      (await errorOf(await reader.send("DELETE", `/v1/channels/${ch}/delayed/${id}`), 403)).message,
    ).toContain('"publish"');
    expect((await publisher.send("DELETE", `/v1/channels/${ch}/delayed/${id}`)).status).toBe(204);
  });
});

describe("what a delayed publish costs", () => {
  it("is 6 commands to a channel, whatever the number of messages: the script, the retention, the channel, the message hash, its set and the timer", async () => {
    const ch = next();
    await publishOne(ch, { data: "the channel exists" });
    for (const count of [1, 1000]) {
      const messages = Array.from({ length: count }, (_, i) => ({ data: i }));
      const counted = await countCommands(stack.redis, async () => {
        await publishBatch(ch, { messages, delayMs: HOUR });
      });
      expect(counted.byCommand).toEqual({ evalsha: 1, hget: 1, exists: 1, hset: 1, zadd: 2 });
    }
  });

  it("adds 4 to a publish of messages for now: the retention, the hash, the set and the timer", async () => {
    const ch = next();
    await publishOne(ch, { data: "the channel exists" }); // its roster kept (shared/roster.ts)
    const counted = await countCommands(stack.redis, async () => {
      await publishBatch(ch, { messages: [{ data: 1 }, { data: 2, delayMs: HOUR }] });
    });
    expect(counted.byCommand).toEqual({
      evalsha: 1,
      xadd: 1,
      hget: 1,
      hset: 1,
      zadd: 2,
    });
  });
});
