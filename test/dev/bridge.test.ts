// The local Upstash REST bridge, driven by @upstash/redis as the product drives it, in front of a
// throwaway redis-server. Replies are checked in their raw RESP2 shapes
// (`automaticDeserialization: false`, like shared/redis.ts); a second client with default options
// checks the shapes the library itself derives. Wire details are checked with fetch.

import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { countCommands, type RedisServer, startRedisServer } from "../helpers/redis-server.ts";

const TOKEN = "test-bridge-token";

let server: RedisServer;
let bridge: Bridge;
/** As the product configures it: raw replies, auto-pipelining on. */
let redis: Redis;
/** Library defaults: JSON-parsed replies, objects for hashes and streams. */
let plain: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startBridge({ redisUrl: server.url, token: TOKEN });
  redis = new Redis({ url: bridge.url, token: TOKEN, automaticDeserialization: false });
  plain = new Redis({ url: bridge.url, token: TOKEN });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

beforeEach(async () => {
  await server.client.flushall();
});

/** One raw HTTP request to the bridge, authorized unless the headers say otherwise. */
async function request(path: string, init: RequestInit = {}) {
  const res = await fetch(bridge.url + path, {
    method: "POST",
    ...init,
    headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
}

const postJson = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(path, { body: JSON.stringify(body), headers });

describe("strings", () => {
  it("sets, gets and increments a string", async () => {
    expect(await redis.set("k", "v")).toBe("OK");
    expect(await redis.get("k")).toBe("v");
    expect(await redis.incr("n")).toBe(1);
    expect(await redis.incrby("n", 41)).toBe(42);
    expect(await redis.get("missing")).toBeNull();
  });

  it("sets with NX PX only when the key is missing, with a TTL in ms", async () => {
    expect(await redis.set("lock", "a", { nx: true, px: 60_000 })).toBe("OK");
    expect(await redis.set("lock", "b", { nx: true, px: 60_000 })).toBeNull();
    expect(await redis.get("lock")).toBe("a");
    expect(await redis.pttl("lock")).toBeGreaterThan(59_000);
  });
});

describe("hashes", () => {
  it("returns HGETALL as a flat field/value array, raw, and as an object by default", async () => {
    expect(await redis.hset("h", { a: "1", b: "two" })).toBe(2);
    expect(await redis.hgetall("h")).toEqual(["a", "1", "b", "two"]);
    expect(await plain.hgetall("h")).toEqual({ a: 1, b: "two" });
  });

  it("returns HMGET values in field order, nil for a missing field", async () => {
    await redis.hset("h", { a: "1", b: "2" });
    expect(await redis.hmget("h", "b", "nope", "a")).toEqual(["2", null, "1"]);
  });

  it("deletes fields with HDEL and counts only those that existed", async () => {
    await redis.hset("h", { a: "1", b: "2" });
    expect(await redis.hdel("h", "a", "nope")).toBe(1);
    expect(await redis.hgetall("h")).toEqual(["b", "2"]);
  });
});

describe("sets", () => {
  it("adds, tests, lists and removes members", async () => {
    expect(await redis.sadd("s", "x", "y", "z")).toBe(3);
    expect(await redis.sismember("s", "y")).toBe(1);
    expect(((await redis.smembers("s")) as string[]).sort()).toEqual(["x", "y", "z"]);
    expect(await redis.srem("s", "y", "nope")).toBe(1);
    expect(await redis.scard("s")).toBe(2);
  });
});

describe("sorted sets", () => {
  it("adds with NX only new members, and with LT only lower scores", async () => {
    await redis.zadd("z", { score: 10, member: "a" });
    expect(await redis.zadd("z", { nx: true }, { score: 1, member: "a" })).toBe(0);
    expect(await redis.zadd("z", { lt: true }, { score: 20, member: "a" })).toBe(0);
    expect(await redis.zscore("z", "a")).toBe("10");
    await redis.zadd("z", { lt: true }, { score: 5, member: "a" });
    expect(await redis.zscore("z", "a")).toBe("5");
  });

  it("ranges by score with LIMIT, and scores several members at once", async () => {
    await redis.zadd("z", { score: 1, member: "a" }, { score: 2, member: "b" });
    await redis.zadd("z", { score: 3, member: "c" }, { score: 4, member: "d" });
    expect(await redis.zrange("z", 2, 4, { byScore: true, offset: 1, count: 2 })).toEqual([
      "c",
      "d",
    ]);
    expect(await redis.zmscore("z", ["b", "nope", "d"])).toEqual(["2", null, "4"]);
    expect(await redis.zrem("z", "a", "b")).toBe(2);
    expect(await redis.zcard("z")).toBe(2);
  });
});

describe("scripts", () => {
  it("returns Lua tables as nested arrays, numbers as integers and false as nil", async () => {
    const script = "return {1, 'two', {3.9, 'four', {}}, false, ARGV[1], KEYS[1]}";
    expect(await redis.eval(script, ["key"], ["arg"])).toEqual([
      1,
      "two",
      [3, "four", []],
      null,
      "arg",
      "key",
    ]);
  });

  it("falls back from EVALSHA to EVAL after SCRIPT FLUSH, then uses EVALSHA again", async () => {
    const incr = redis.createScript<number>("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    expect(await incr.exec(["n"], ["2"])).toBe(2);
    await redis.scriptFlush();
    const afterFlush = await countCommands(server.client, () => incr.exec(["n"], ["3"]));
    expect(afterFlush.byCommand).toEqual({ evalsha: 1, eval: 1, incrby: 1 });
    const cached = await countCommands(server.client, () => incr.exec(["n"], ["4"]));
    expect(cached.byCommand).toEqual({ evalsha: 1, incrby: 1 });
    expect(await redis.get("n")).toBe("9");
  });
});

describe("streams", () => {
  /** A stream entry as RESP2 sends it: [id, [field, value, ...]]. */
  const entry = (id: unknown, ...pairs: string[]) => [id, pairs];
  const createGroup = (key: string, id = "0") =>
    redis.xgroup(key, { type: "CREATE", group: "g", id, options: { MKSTREAM: true } });

  it("adds entries, and with NOMKSTREAM adds nothing to a missing stream (nil)", async () => {
    const id = await redis.xadd("st", "*", { f: "v" });
    expect(id).toMatch(/^\d+-\d+$/);
    expect(await redis.xadd("missing", "*", { f: "v" }, { nomkStream: true })).toBeNull();
    expect(await redis.exists("missing")).toBe(0);
  });

  it("ranges after an exclusive start with COUNT, backwards, and counts entries", async () => {
    for (const n of ["1", "2", "3"]) await redis.xadd("st", `0-${n}`, { n });
    expect(await redis.xrange("st", "(0-1", "+", 1)).toEqual([entry("0-2", "n", "2")]);
    expect(await redis.xrevrange("st", "+", "-", 2)).toEqual([
      entry("0-3", "n", "3"),
      entry("0-2", "n", "2"),
    ]);
    expect(await plain.xrange("st", "-", "0-1")).toEqual({ "0-1": { n: 1 } });
    expect(await redis.xlen("st")).toBe(3);
  });

  it("creates a group with MKSTREAM, refuses it twice (BUSYGROUP), moves and destroys it", async () => {
    expect(await createGroup("st", "$")).toBe("OK");
    await expect(redis.xgroup("st", { type: "CREATE", group: "g", id: "$" })).rejects.toThrow(
      /BUSYGROUP Consumer Group name already exists/,
    );
    expect(await redis.xgroup("st", { type: "SETID", group: "g", id: "0" })).toBe("OK");
    expect(await redis.xgroup("st", { type: "DESTROY", group: "g" })).toBe(1);
  });

  it("reads new entries for a group from one stream, then nil when there are none", async () => {
    await createGroup("st", "$");
    const id = await redis.xadd("st", "*", { body: '{"a":1}' });
    expect(await redis.xreadgroup("g", "c1", "st", ">", { count: 10 })).toEqual([
      ["st", [entry(id, "body", '{"a":1}')]],
    ]);
    expect(await redis.xreadgroup("g", "c1", "st", ">")).toBeNull();
  });

  it("reads from two streams at once, one reply per stream that has entries", async () => {
    await createGroup("s1");
    await createGroup("s2");
    const a = await redis.xadd("s1", "*", { n: "1" });
    const b = await redis.xadd("s2", "*", { n: "2" });
    expect(await redis.xreadgroup("g", "c1", ["s1", "s2"], [">", ">"])).toEqual([
      ["s1", [entry(a, "n", "1")]],
      ["s2", [entry(b, "n", "2")]],
    ]);
  });

  it("acks, reports pending in summary and extended form, claims and autoclaims", async () => {
    await createGroup("st");
    const first = await redis.xadd("st", "*", { n: "1" });
    const second = await redis.xadd("st", "*", { n: "2" });
    await redis.xreadgroup("g", "c1", "st", ">");
    expect(await redis.xack("st", "g", first)).toBe(1);
    expect(await redis.exec(["XPENDING", "st", "g"])).toEqual([1, second, second, [["c1", "1"]]]);
    expect(await redis.xpending("st", "g", "-", "+", 10)).toEqual([
      [second, "c1", expect.any(Number), 1],
    ]);
    expect(await redis.xclaim("st", "g", "c2", 0, second)).toEqual([entry(second, "n", "2")]);
    expect(await redis.xautoclaim("st", "g", "c3", 0, "0-0")).toEqual([
      "0-0",
      [entry(second, "n", "2")],
      [],
    ]);
  });

  it("describes groups with XINFO GROUPS, lag included", async () => {
    await createGroup("st");
    const first = await redis.xadd("st", "*", { n: "1" });
    await redis.xadd("st", "*", { n: "2" });
    await redis.xreadgroup("g", "c1", "st", ">", { count: 1 });
    expect(await redis.xinfo("st", { type: "GROUPS" })).toEqual([
      // biome-ignore format: one field/value pair a line
      [
        "name", "g",
        "consumers", 1,
        "pending", 1,
        "last-delivered-id", first,
        "entries-read", 1,
        "lag", 1,
      ],
    ]);
  });

  it("trims to a length and deletes entries by id", async () => {
    for (const n of ["1", "2", "3", "4"]) await redis.xadd("st", `0-${n}`, { n });
    expect(await redis.xtrim("st", { strategy: "MAXLEN", exactness: "=", threshold: 2 })).toBe(2);
    expect(await redis.xdel("st", ["0-3", "0-1"])).toBe(1);
    expect(await redis.xrange("st", "-", "+")).toEqual([entry("0-4", "n", "4")]);
  });
});

describe("binary and unicode values", () => {
  const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const invalidUtf8 = Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80, 0x00]);
  const base64 = { "upstash-encoding": "base64" };
  const bytesOf = (value: unknown) => Buffer.from(value as string, "base64");

  it("returns every byte 0x00-0xff, base64 encoded, exactly as stored", async () => {
    await server.client.set("bin", allBytes);
    const { body } = await postJson("/", ["GET", "bin"], base64);
    expect(bytesOf((body as { result: unknown }).result)).toEqual(allBytes);
  });

  it("base64-encodes nested strings too: invalid UTF-8 in a stream entry survives", async () => {
    await server.client.xadd("st", "0-1", invalidUtf8, allBytes);
    const { body } = await postJson("/", ["XRANGE", "st", "-", "+"], base64);
    const [[id, [field, value]]] = (body as { result: [[string, [string, string]]] }).result;
    expect(bytesOf(id).toString()).toBe("0-1");
    expect(bytesOf(field)).toEqual(invalidUtf8);
    expect(bytesOf(value)).toEqual(allBytes);
  });

  it("stores a POST body in path form byte for byte", async () => {
    const { status } = await request("/set/bin", { body: invalidUtf8 });
    expect(status).toBe(200);
    expect(await server.client.getBuffer("bin")).toEqual(invalidUtf8);
  });

  it("sends OK plain, but a stored value that reads OK as base64, only at the top level", async () => {
    expect((await postJson("/", ["SET", "k", "OK"], base64)).body).toEqual({ result: "OK" });
    const { body } = await postJson("/", ["MGET", "k"], base64);
    expect(body).toEqual({ result: [Buffer.from("OK").toString("base64")] });
  });

  it("sends UTF-8 text without the base64 header", async () => {
    await redis.set("k", "héllo 👋 世界");
    expect((await postJson("/", ["GET", "k"])).body).toEqual({ result: "héllo 👋 世界" });
  });

  it("round-trips emoji and CJK through @upstash/redis in strings, hashes and streams", async () => {
    const text = "🚀 données 数据 データ 🇫🇷";
    await redis.set("k", text);
    expect(await redis.get("k")).toBe(text);
    await redis.hset("h", { [text]: text });
    expect(await redis.hgetall("h")).toEqual([text, text]);
    const id = await redis.xadd("st", "*", { body: text });
    expect(await redis.xrange("st", "-", "+")).toEqual([[id, ["body", text]]]);
    expect(await plain.get("k")).toBe(text);
  });
});

describe("error replies", () => {
  it("passes Redis' WRONGTYPE error to the client", async () => {
    await redis.set("k", "v");
    await expect(redis.lpush("k", "x")).rejects.toThrow(
      "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
  });

  it("answers a wrong arity with 400 and Redis' own message", async () => {
    expect(await postJson("/", ["GET"])).toMatchObject({
      status: 400,
      body: { error: "ERR wrong number of arguments for 'get' command" },
    });
    await expect(redis.exec(["GET"])).rejects.toThrow(
      "ERR wrong number of arguments for 'get' command",
    );
  });
});

describe("/pipeline", () => {
  it("runs every command in order, a failing one in the middle included", async () => {
    await redis.set("str", "v");
    const { status, body } = await postJson("/pipeline", [
      ["SET", "a", "1"],
      ["LPUSH", "str", "x"],
      ["INCR", "a"],
    ]);
    expect(status).toBe(200);
    expect(body).toEqual([
      { result: "OK" },
      { error: "WRONGTYPE Operation against a key holding the wrong kind of value" },
      { result: 2 },
    ]);
  });

  it("gives @upstash/redis each command's result or error", async () => {
    const results = await redis
      .pipeline()
      .set("a", "1")
      .lpush("a", "x")
      .incr("a")
      .exec({ keepErrors: true });
    expect(results.map((r) => r.error ?? r.result)).toEqual([
      "OK",
      "WRONGTYPE Operation against a key holding the wrong kind of value",
      2,
    ]);
  });

  it("sends concurrent @upstash/redis calls as one /pipeline request (auto-pipelining)", async () => {
    const before = { ...bridge.stats };
    await Promise.all([redis.set("a", "1"), redis.set("b", "2"), redis.incr("c")]);
    expect(bridge.stats.requests - before.requests).toBe(1);
    expect(bridge.stats.commands - before.commands).toBe(3);
  });
});

describe("/multi-exec", () => {
  it("runs the commands inside one MULTI/EXEC", async () => {
    const counts = await countCommands(server.client, async () => {
      expect(await redis.multi().set("a", "1").incr("a").get("a").exec()).toEqual(["OK", 2, "2"]);
    });
    expect(counts.byCommand).toEqual({ multi: 1, set: 1, incr: 1, get: 1, exec: 1 });
  });

  it("reports a command failing at run time without undoing the others", async () => {
    const { status, body } = await postJson("/multi-exec", [
      ["SET", "a", "x"],
      ["INCR", "a"],
      ["SET", "b", "y"],
    ]);
    expect(status).toBe(200);
    expect(body).toEqual([
      { result: "OK" },
      { error: "ERR value is not an integer or out of range" },
      { result: "OK" },
    ]);
  });

  it("discards the whole transaction on a command Redis refuses to queue (400)", async () => {
    const { status, body } = await postJson("/multi-exec", [["SET", "a", "1"], ["NOSUCHCOMMAND"]]);
    expect(status).toBe(400);
    expect(body).toEqual({ error: expect.stringMatching(/^EXECABORT .*unknown command/) });
    expect(await server.client.exists("a")).toBe(0);
  });
});

describe("path form", () => {
  it("runs GET /<command>/<arg>/... with each segment as an argument", async () => {
    expect((await request("/set/foo/bar", { method: "GET" })).body).toEqual({ result: "OK" });
    expect((await request("/get/foo", { method: "GET" })).body).toEqual({ result: "bar" });
  });

  it("percent-decodes segments, so a key may hold a slash or a space", async () => {
    await request("/set/a%2Fb%20c/v%C3%A9", { method: "GET" });
    expect(await server.client.get("a/b c")).toBe("vé");
  });

  it("appends a POST body, then query parameters as NAME value pairs", async () => {
    const { status } = await request("/set/k?EX=100", { body: "the value" });
    expect(status).toBe(200);
    expect(await server.client.get("k")).toBe("the value");
    expect(await server.client.ttl("k")).toBeGreaterThan(90);
  });
});

describe("authorization", () => {
  const get = (path: string, headers: Record<string, string>) =>
    fetch(bridge.url + path, { headers }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as unknown,
    }));

  it("accepts the token as ?_token= instead of a header", async () => {
    expect(await get(`/set/k/v?_token=${TOKEN}`, {})).toEqual({
      status: 200,
      body: { result: "OK" },
    });
  });

  it.each([
    ["no token", "/get/k", {}],
    ["a wrong bearer token", "/get/k", { authorization: "Bearer nope" }],
    ["a token that is a prefix of the right one", "/get/k", { authorization: "Bearer test" }],
    ["a wrong ?_token=", "/get/k?_token=nope", {}],
  ])("answers 401 to %s", async (_, path, headers) => {
    expect(await get(path, headers)).toEqual({ status: 401, body: { error: "Unauthorized" } });
  });
});

describe("malformed requests", () => {
  it("answers 405 to a method other than GET, HEAD, POST and PUT", async () => {
    expect(await request("/get/k", { method: "DELETE" })).toMatchObject({
      status: 405,
      body: { error: "Method Not Allowed" },
    });
  });

  it.each([
    ["malformed JSON", "/", '["GET",'],
    ["a body that is not an array", "/", '{"cmd":"GET"}'],
    ["an argument that is not a string or number", "/", '["SET","k",{"a":1}]'],
    ["an empty command", "/", "[]"],
    ["an empty pipeline", "/pipeline", "[]"],
    ["a pipeline entry that is not an array", "/pipeline", '["GET","k"]'],
    ["a command that would change the shared connection", "/", '["SELECT","1"]'],
  ])("answers 400 to %s", async (_, path, body) => {
    expect(await request(path, { body })).toMatchObject({
      status: 400,
      body: { error: expect.stringMatching(/^ERR /) },
    });
  });
});

describe("responses", () => {
  it("are JSON and carry a new upstash-sync-token each time (read-your-writes)", async () => {
    const first = await postJson("/", ["PING"]);
    const second = await postJson("/", ["PING"]);
    expect(first.headers.get("content-type")).toBe("application/json");
    expect(first.headers.get("upstash-sync-token")).toBeTruthy();
    expect(second.headers.get("upstash-sync-token")).not.toBe(
      first.headers.get("upstash-sync-token"),
    );
  });

  it("count HTTP requests and the Redis commands they ran", async () => {
    const before = { ...bridge.stats };
    await postJson("/pipeline", [["PING"], ["PING"]]);
    await postJson("/", ["PING"]);
    expect(bridge.stats).toMatchObject({
      requests: before.requests + 2,
      commands: before.commands + 3,
    });
  });

  it("record the largest reply body sent, in bytes", async () => {
    const value = "x".repeat(300_000);
    await postJson("/", ["SET", "big-reply", value]);
    await postJson("/", ["GET", "big-reply"]);
    expect(bridge.stats.largestReplyBytes).toBeGreaterThanOrEqual(300_000);
  });
});

describe("when Redis is down", () => {
  /** A server and bridge of this test's own, so the other tests keep theirs. */
  async function startPair() {
    const own = await startRedisServer();
    const ownBridge = await startBridge({ redisUrl: own.url, token: TOKEN });
    onTestFinished(async () => {
      await ownBridge.close();
      await own.stop();
    });
    const get = (path: string) =>
      fetch(ownBridge.url + path, { headers: { authorization: `Bearer ${TOKEN}` } }).then(
        async (r) => ({ status: r.status, body: (await r.json()) as unknown }),
      );
    return { own, ownBridge, get };
  }

  it("answers 503 UNAVAILABLE at once, and the client's error says so", async () => {
    const { own, ownBridge, get } = await startPair();
    await own.stop();
    expect(await get("/get/k")).toEqual({
      status: 503,
      body: { error: expect.stringMatching(/^UNAVAILABLE redis is unreachable: \S/) },
    });
    const client = new Redis({ url: ownBridge.url, token: TOKEN, automaticDeserialization: false });
    await expect(client.get("k")).rejects.toThrow(/UNAVAILABLE/);
  });

  it("recovers by itself when Redis is back on the same port", async () => {
    const { own, get } = await startPair();
    await own.stop();
    expect((await get("/ping")).status).toBe(503);
    const back = await startRedisServer({ port: own.port });
    onTestFinished(() => back.stop());
    await expect
      .poll(async () => (await get("/ping")).body, { timeout: 10_000 })
      .toEqual({
        result: "PONG",
      });
  });

  it("refuses to start when Redis is unreachable, naming the URL", async () => {
    const { own } = await startPair();
    await own.stop();
    await expect(startBridge({ redisUrl: own.url, token: TOKEN })).rejects.toThrow(
      `redis is unreachable at ${own.url}`,
    );
  });
});
