import { describe, expect, it, onTestFinished } from "vitest";
import { DROP_CHANNEL_LUA } from "../../shared/lua/drop-channel.ts";
import { loadScripts, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { gate, readersOf, until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { getSubscription, publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// A channel's lifecycle ends with DELETE, which must leave no key of it behind (nor touch another
// channel's), and what a database holds must be visible before it fills up.
const PREFIX = "lc:v1";
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
// No events channel: the keyspace outside the deleted channel must stay byte for byte the same,
// and a dead-lettering here would publish an event there.
const vars = { KICK_ON_PUBLISH: "false", EVENTS_CHANNEL: "none" };
deliveryFixture("gone", { keyPrefix: PREFIX, vars }, (f) => {
  ({ stack, receiver, channel } = f);
});

interface ErrorBody {
  error: { code: string; message: string };
}

const remove = (name: string, query = "") =>
  stack.api(`/v1/channels/${name}${query}`, { method: "DELETE" });
const publishWithKey = (name: string, key: string) =>
  stack.post(`/v1/channels/${name}/messages`, { data: key }, { "idempotency-key": key });
const patch = (path: string, body: unknown) =>
  stack.api(path, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** A key of `name`'s: its name is the segment after the key's kind (keys.ts: {p}:<kind>:<ch>...). */
const isKeyOf = (key: string, name: string) => key.slice(PREFIX.length + 1).split(":")[1] === name;
/** A {p}:due member of one of `name`'s units (keys.ts: wake:<ch>/<sub>, retry:<ch>/<sub>/redrive). */
const isMemberOf = (member: string, name: string) => member.split(":")[1]?.split("/")[0] === name;

/** Every key under the test's prefix, each with its DUMP, and the schedule and registry. */
async function keyspace() {
  const names = (await stack.redis.keys(`${PREFIX}:*`)).sort();
  const dumps = new Map<string, string>();
  for (const key of names)
    dumps.set(key, (await stack.redis.dumpBuffer(key))?.toString("hex") ?? "");
  const due = await stack.redis.zrange(stack.keys.due(), "0", "-1", "WITHSCORES");
  const registry = (await stack.redis.smembers(stack.keys.channels())).sort();
  return { names, dumps, due, registry };
}

/** What the keyspace holds apart from `name`: every other key's DUMP, members, registry. */
function without(space: Awaited<ReturnType<typeof keyspace>>, name: string) {
  const shared = new Set([stack.keys.due(), stack.keys.channels()]);
  const dumps = [...space.dumps].filter(([key]) => !isKeyOf(key, name) && !shared.has(key));
  const due: string[] = [];
  for (let i = 0; i < space.due.length; i += 2) {
    const [member, score] = [space.due[i]!, space.due[i + 1]!];
    if (!isMemberOf(member, name)) due.push(member, score);
  }
  return { dumps, due, registry: space.registry.filter((c) => c !== name) };
}

describe("DELETE /v1/channels/{channel}", () => {
  it("with force=true, removes every key of the channel and its subscriptions, and nothing else", async () => {
    const kept = `${channel}-kept`;
    receiver.respond({ status: 500 });
    // "sub" dead-letters at once, and its dead letters are redriven: the redrive's delivery is
    // sending when the channel goes (its reader in the group, its retry member, and the start
    // slots of its pace key: "sub" is paced); "other" waits for a retry, then is paused.
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      maxAttempts: 1,
      maxRequestsPerSecond: 10,
    });
    await subscribe(stack, channel, { name: "other", url: receiver.url, maxAttempts: 5 });
    await subscribe(stack, kept, { name: "sub", url: receiver.url });
    expect((await publishWithKey(channel, "k-1")).status).toBe(201);
    expect((await publishWithKey(kept, "k-1")).status).toBe(201);
    await runPass(stack);
    expect(receiver.requests).toHaveLength(3);
    const deleted = gate();
    onTestFinished(deleted.open);
    receiver.respond(async () => {
      await deleted.opened; // answered only once the channel is gone
      return { status: 204 };
    });
    const path = `/v1/channels/${channel}/subscriptions`;
    expect((await stack.post(`${path}/sub/dead-letters/redrive`, undefined)).status).toBe(200);
    await receiver.waitFor((r) => r.requests.length === 4); // the redrive's delivery (waitUntil)
    expect(await readersOf(stack, channel, "sub", "redrive")).toHaveLength(1);
    expect((await patch(`${path}/other`, { paused: true })).status).toBe(200);
    // And a delayed message, waiting for its time (shared/delayed.ts), with its timer.
    const later = { data: "later", delayMs: 3_600_000 };
    expect((await stack.post(`/v1/channels/${channel}/messages`, later)).status).toBe(201);

    const before = await keyspace();
    const k = stack.keys;
    expect(before.names.filter((key) => isKeyOf(key, channel))).toEqual(
      [
        k.channel(channel),
        k.subscriptions(channel),
        k.state(channel),
        k.deadLetters(channel, "sub"),
        k.redrive(channel, "sub"),
        k.pace(channel, "sub"),
        k.idempotency(channel, "k-1"),
        k.attempts(channel, "sub"),
        k.attempts(channel, "other"),
        k.metrics(channel),
        k.delayed(channel),
        k.delayedMessages(channel),
      ].sort(),
    );
    expect(before.due).toEqual(
      expect.arrayContaining([
        `retry:${channel}/sub/redrive`,
        `retry:${channel}/other`,
        `delay:${channel}`,
      ]),
    );

    const res = await remove(channel, "?force=true");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: channel,
      messages: 1,
      subscriptions: ["other", "sub"],
      idempotencyKeys: 1,
      delayed: 1,
    });

    const after = await keyspace();
    expect(after.names.filter((key) => isKeyOf(key, channel))).toEqual([]);
    expect(after.due.filter((member) => isMemberOf(member, channel))).toEqual([]);
    expect(after.registry).not.toContain(channel);
    expect(after.registry).toContain(kept);
    expect(without(after, channel)).toEqual(without(before, channel));
  });

  it("answers 409 channel_has_subscriptions without force, and deletes nothing", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: 1 }]);
    const before = await keyspace();

    for (const query of ["", "?force=false"]) {
      const res = await remove(channel, query);
      expect(res.status).toBe(409);
      const { error } = (await res.json()) as ErrorBody;
      expect(error.code).toBe("channel_has_subscriptions");
      expect(error.message).toContain("sub");
    }
    expect(await keyspace()).toEqual(before);
    expect((await getSubscription(stack, channel, "sub")).name).toBe("sub");
  });

  it("deletes a channel without subscriptions without force", async () => {
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    const res = await remove(channel);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: channel,
      messages: 2,
      subscriptions: [],
      idempotencyKeys: 0,
      delayed: 0,
    });
    expect((await keyspace()).names.filter((key) => isKeyOf(key, channel))).toEqual([]);
  });

  it("leaves nothing of the channel visible: a publish after it starts a new, empty channel", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect((await publishWithKey(channel, "again")).status).toBe(201);
    expect((await remove(channel, "?force=true")).status).toBe(200);

    expect((await stack.api(`/v1/channels/${channel}`)).status).toBe(404);
    expect((await stack.api(`/v1/channels/${channel}/subscriptions`)).status).toBe(404);
    const listed = (await (await stack.api("/v1/channels")).json()) as {
      channels: { name: string }[];
    };
    expect(listed.channels.map((c) => c.name)).not.toContain(channel);

    // The same Idempotency-Key publishes again (its record went with the channel).
    const again = await publishWithKey(channel, "again");
    expect(again.status).toBe(201);
    const info = (await (await stack.api(`/v1/channels/${channel}`)).json()) as {
      length: number;
      subscriptions: number;
    };
    expect(info).toMatchObject({ length: 1, subscriptions: 0 });
  });

  it("answers 404 channel_not_found for a channel that does not exist, or no longer does", async () => {
    for (const query of ["", "?force=true"]) {
      const res = await remove(`${channel}-never`, query);
      expect(res.status).toBe(404);
      expect(((await res.json()) as ErrorBody).error.code).toBe("channel_not_found");
    }
    await publish(stack, channel, [{ data: 1 }]);
    expect((await remove(channel)).status).toBe(200);
    const again = await remove(channel);
    expect(again.status).toBe(404);
    expect(((await again.json()) as ErrorBody).error.code).toBe("channel_not_found");
  });

  it("deletes once and answers 200 when the reply of its drop is lost", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await loadScripts(stack, [DROP_CHANNEL_LUA]); // so the fault hits a run, not a NOSCRIPT
    const dropped = stack.bridge.faults.injected["drop-reply"];
    onTestFinished(
      stack.bridge.faults.add({
        kind: "drop-reply",
        match: runsScript(DROP_CHANNEL_LUA, channel),
        times: 1,
      }),
    );
    const res = await remove(channel, "?force=true");
    expect(stack.bridge.faults.injected["drop-reply"]).toBe(dropped + 1);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      name: channel,
      messages: 2,
      subscriptions: ["sub"],
      idempotencyKeys: 0,
      delayed: 0,
    });
    expect((await keyspace()).names.filter((key) => isKeyOf(key, channel))).toEqual([]);
  });

  it("drops the work of a deliverer that is sending when the channel goes: nothing comes back", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const deleted = gate();
    receiver.respond(async () => {
      await deleted.opened; // answered only once the channel is gone
      return { status: 204 };
    });
    await publish(stack, channel, [{ data: 1 }]);
    const passing = runPass(stack);
    await receiver.waitFor((r) => r.requests.length === 1);
    expect((await remove(channel, "?force=true")).status).toBe(200);
    deleted.open();
    // The pass answers once its visit is over: whatever it did after the delete is done.
    const during = await passing;
    expect(during.subscriptions.find((s) => s.channel === channel)?.error).toBeUndefined();

    const after = await keyspace();
    expect(after.names.filter((key) => isKeyOf(key, channel))).toEqual([]);
    expect(after.due.filter((member) => isMemberOf(member, channel))).toEqual([]);
    expect(after.registry).not.toContain(channel);
  });
});

interface Listed {
  channels: { name: string; length: number; sizeBytes: number }[];
  totals: { channels: number; messages: number; sizeBytes: number };
}

const memoryUsage = async (name: string) =>
  Number(await stack.redis.call("MEMORY", "USAGE", stack.keys.channel(name)));
const pad = (kib: number) => "x".repeat(kib * 1024);

describe("storage you can see", () => {
  it("shows a channel's size: Redis' MEMORY USAGE of its stream", async () => {
    await publish(stack, channel, [{ data: pad(10) }, { data: pad(10) }, { data: pad(10) }]);
    const info = (await (await stack.api(`/v1/channels/${channel}`)).json()) as {
      sizeBytes: number;
    };
    expect(info.sizeBytes).toBe(await memoryUsage(channel));
    expect(info.sizeBytes).toBeGreaterThan(30 * 1024);
  });

  it("lists each channel's size and the totals, in as many requests to Redis whatever their number", async () => {
    const names = [1, 2, 3, 4, 5].map((n) => `${channel}-${n}`);
    const requestsToList = async () => {
      const before = stack.bridge.stats.requests;
      const res = await stack.api("/v1/channels");
      expect(res.status).toBe(200);
      return {
        listed: (await res.json()) as Listed,
        requests: stack.bridge.stats.requests - before,
      };
    };
    for (const name of names.slice(0, 2)) await publish(stack, name, [{ data: pad(1) }]);
    await requestsToList(); // the scripts are loaded now
    const few = await requestsToList();
    for (const name of names.slice(2)) await publish(stack, name, [{ data: 1 }, { data: 2 }]);
    const more = await requestsToList();
    expect(more.requests).toBe(few.requests);

    const { channels, totals } = more.listed;
    for (const name of names) {
      const listed = channels.find((c) => c.name === name);
      expect(listed?.sizeBytes).toBe(await memoryUsage(name));
    }
    expect(totals).toEqual({
      channels: channels.length,
      messages: channels.reduce((sum, c) => sum + c.length, 0),
      sizeBytes: channels.reduce((sum, c) => sum + c.sizeBytes, 0),
    });
    expect(totals.messages).toBeGreaterThanOrEqual(8);
  });
});

describe("a full database", () => {
  /**
   * Puts this stack's Redis over its capacity: maxmemory (which the bridge words as Upstash's
   * capacity) at half of what it uses, so every write is refused whatever small buffers come and
   * go. Undone when the test ends.
   */
  async function overCapacity() {
    const used = Number(/used_memory:(\d+)/.exec(await stack.redis.info("memory"))?.[1]);
    expect(used).toBeGreaterThan(0);
    onTestFinished(async () => {
      await stack.redis.config("SET", "maxmemory", "0");
    });
    await stack.redis.config("SET", "maxmemory-policy", "noeviction");
    await stack.redis.config("SET", "maxmemory", String(Math.floor(used / 2)));
  }

  it("says so on /health, refuses publishes naming the channel and the limit, and still reads and deletes", async () => {
    const health = () => fetch(`${stack.url}/health`);
    expect((await health()).status).toBe(200);
    const doomed = `${channel}-doomed`;
    await publish(stack, channel, [{ data: 1 }]);
    await publish(stack, doomed, [{ data: 1 }]);
    await overCapacity();

    const full = await health();
    expect(full.status).toBe(507);
    const { error } = (await full.json()) as ErrorBody;
    expect(error.code).toBe("storage_full");
    expect(error.message).toMatch(/database is full/);

    // Nothing of a refused publish is written: not to a channel, not to a new one.
    const fresh = `${channel}-fresh`;
    for (const name of [channel, fresh]) {
      const res = await stack.post(`/v1/channels/${name}/messages`, { data: "more" });
      expect(res.status).toBe(507);
      const refused = ((await res.json()) as ErrorBody).error;
      expect(refused.code).toBe("storage_full");
      expect(refused.message).toContain(`"${name}"`);
      expect(refused.message).toMatch(/capacity/);
    }
    expect(await stack.redis.xlen(stack.keys.channel(channel))).toBe(1);
    expect(await stack.redis.exists(stack.keys.channel(fresh))).toBe(0);
    expect(await stack.redis.sismember(stack.keys.channels(), fresh)).toBe(0);

    // Reads and deletes still work: deleting is the way out.
    expect((await stack.api("/v1/channels")).status).toBe(200);
    expect((await remove(doomed)).status).toBe(200);
    expect(await stack.redis.exists(stack.keys.channel(doomed))).toBe(0);

    await stack.redis.config("SET", "maxmemory", "0");
    await until("/health is ok again", async () => (await health()).status === 200);
  });
});
