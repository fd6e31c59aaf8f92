// The bridge refuses what Upstash refuses, with Upstash's texts: request size, record size,
// pending entries per consumer (in plain commands, pipelines, transactions and Lua scripts), and
// the database's capacity. Driven by @upstash/redis against a throwaway redis-server, with small
// limits so the tests stay fast; wire details (status, exact body) are checked with fetch.

import { createHash } from "node:crypto";
import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { countCommands, type RedisServer, startRedisServer } from "../helpers/redis-server.ts";

const TOKEN = "test-bridge-token";
const KiB = 1024;
const LIMITS = { maxRecordBytes: 64 * KiB, maxRequestBytes: 256 * KiB, maxPendingPerConsumer: 10 };
const RECORD_TOO_BIG = "ERR max single record size exceeded";

let server: RedisServer;
let bridge: Bridge;
/** As the product configures it: raw replies, auto-pipelining on. */
let redis: Redis;

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startBridge({ redisUrl: server.url, token: TOKEN, ...LIMITS });
  redis = new Redis({ url: bridge.url, token: TOKEN, automaticDeserialization: false });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

beforeEach(async () => {
  await server.client.flushall();
});

async function postJson(path: string, body: unknown) {
  const res = await fetch(bridge.url + path, {
    method: "POST",
    body: typeof body === "string" ? body : JSON.stringify(body),
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

const text = (bytes: number, fill = "x") => fill.repeat(bytes);

/** The entry ids of an XREADGROUP reply (RESP2: [[stream, [[id, fields], ...]], ...]). */
type GroupRead = [stream: string, entries: [id: string, fields: string[]][]][];
const idsOf = (reply: unknown) =>
  ((reply ?? []) as GroupRead).flatMap(([, entries]) => entries.map(([id]) => id));

describe("request size", () => {
  it("refuses a body over maxRequestBytes with 400 and Upstash's text, running nothing", async () => {
    expect(await postJson("/", ["SET", "k", text(300 * KiB)])).toEqual({
      status: 400,
      body: { error: "ERR max request size exceeded" },
    });
    await expect(redis.set("k", text(300 * KiB))).rejects.toThrow("ERR max request size exceeded");
    expect(await server.client.exists("k")).toBe(0);
  });

  it("accepts a body of exactly maxRequestBytes", async () => {
    const envelope = JSON.stringify(["ECHO", ""]).length;
    const body = JSON.stringify(["ECHO", text(LIMITS.maxRequestBytes - envelope)]);
    expect(Buffer.byteLength(body)).toBe(LIMITS.maxRequestBytes);
    expect((await postJson("/", body)).status).toBe(200);
  });

  it.each(["/pipeline", "/multi-exec"])(
    "refuses a whole %s over the limit: not even its small commands run",
    async (path) => {
      const commands = [
        ["SET", "small", "1"],
        ["SET", "big", text(300 * KiB)],
      ];
      expect(await postJson(path, commands)).toEqual({
        status: 400,
        body: { error: "ERR max request size exceeded" },
      });
      expect(await server.client.exists("small")).toBe(0);
    },
  );
});

describe("record size", () => {
  it("refuses a write that would grow a key past maxRecordBytes", async () => {
    await redis.hset("h", { a: text(40 * KiB) });
    await expect(redis.hset("h", { b: text(40 * KiB) })).rejects.toThrow(RECORD_TOO_BIG);
    expect(await server.client.hkeys("h")).toEqual(["a"]);
  });

  it("refuses a value over the limit on a key that does not exist yet, with Upstash's text", async () => {
    expect(await postJson("/", ["SET", "k", text(70 * KiB)])).toEqual({
      status: 400,
      body: { error: RECORD_TOO_BIG },
    });
    expect(await server.client.exists("k")).toBe(0);
  });

  it.each([
    ["XADD", ["XADD", "k", "*", "f", text(40 * KiB)]],
    ["SET", ["SET", "k", text(40 * KiB)]],
    ["APPEND", ["APPEND", "k", text(40 * KiB)]],
    ["HSET", ["HSET", "k", text(8), text(40 * KiB)]],
    ["ZADD", ["ZADD", "k", "1", text(40 * KiB)]],
    ["SADD", ["SADD", "k", text(40 * KiB)]],
    ["RPUSH", ["RPUSH", "k", text(40 * KiB)]],
  ])("counts %s's data against the key", async (_, command) => {
    const second = command.map((arg) => (arg.length > KiB ? text(40 * KiB, "y") : arg));
    expect((await postJson("/", command)).status).toBe(200);
    expect(await postJson("/", second)).toEqual({ status: 400, body: { error: RECORD_TOO_BIG } });
  });

  it("checks each key of an MSET with its own value", async () => {
    await redis.set("b", text(40 * KiB));
    await expect(redis.mset({ a: text(30 * KiB), b: text(30 * KiB) })).rejects.toThrow(
      RECORD_TOO_BIG,
    );
    expect(await server.client.exists("a")).toBe(0);
  });

  it("still reads, acks, trims and deletes a key over the limit", async () => {
    // Grown past the limit behind the bridge's back, as a lowered limit would leave it.
    await server.client.xgroup("CREATE", "s", "g", "0", "MKSTREAM");
    for (let i = 0; i < 3; i++) await server.client.xadd("s", "*", "f", text(40 * KiB));
    await server.client.hset("h", "a", text(70 * KiB), "b", "1");
    const [id] = idsOf(await redis.xreadgroup("g", "c", "s", ">", { count: 1 }));
    expect(await redis.xack("s", "g", id!)).toBe(1);
    expect(await redis.xclaim("s", "g", "c2", 0, id!)).toEqual([]);
    expect(await redis.xlen("s")).toBe(3);
    expect(await redis.xdel("s", id!)).toBe(1);
    expect(await redis.xtrim("s", { strategy: "MAXLEN", threshold: 1 })).toBe(1);
    expect(await redis.hdel("h", "b")).toBe(1);
    expect(await redis.del("s", "h")).toBe(2);
  });

  it("refuses only the offending command of a pipeline; the others run in order", async () => {
    await redis.set("big", text(40 * KiB));
    const results = await redis
      .pipeline()
      .set("a", "1")
      .append("big", text(40 * KiB))
      .incr("a")
      .exec({ keepErrors: true });
    expect(results.map((r) => r.error ?? r.result)).toEqual(["OK", RECORD_TOO_BIG, 2]);
  });

  it("checks a pipeline's write against what its earlier commands wrote", async () => {
    const results = await redis
      .pipeline()
      .append("k", text(40 * KiB))
      .append("k", text(40 * KiB))
      .exec({ keepErrors: true });
    expect(results.map((r) => r.error ?? r.result)).toEqual([40 * KiB, RECORD_TOO_BIG]);
  });

  it("refuses only the offending command of a transaction, counting its earlier writes", async () => {
    const { status, body } = await postJson("/multi-exec", [
      ["APPEND", "k", text(40 * KiB)],
      ["APPEND", "k", text(40 * KiB)],
      ["SET", "other", "1"],
    ]);
    expect(status).toBe(200);
    expect(body).toEqual([{ result: 40 * KiB }, { error: RECORD_TOO_BIG }, { result: "OK" }]);
  });

  it("refuses a write inside a script with Upstash's text, keeping the script's earlier writes", async () => {
    const script = `
      redis.call('SET', KEYS[1], 'written before')
      redis.call('APPEND', KEYS[2], ARGV[1])
      return 'not reached'`;
    const { body } = await postJson("/", ["EVAL", script, "2", "a", "big", text(70 * KiB)]);
    expect(body).toEqual({ error: RECORD_TOO_BIG });
    expect(await server.client.get("a")).toBe("written before");
    expect(await server.client.exists("big")).toBe(0);
  });

  it("returns the refusal from redis.pcall as an error table the script can read", async () => {
    const script = "return redis.pcall('APPEND', KEYS[1], ARGV[1]).err";
    expect(await redis.eval(script, ["big"], [text(70 * KiB)])).toBe(RECORD_TOO_BIG);
  });

  it("checks a script's writes through an alias of redis.call too", async () => {
    const script = "local call = redis.call\nreturn call('APPEND', KEYS[1], ARGV[1])";
    await expect(redis.eval(script, ["big"], [text(70 * KiB)])).rejects.toThrow(RECORD_TOO_BIG);
  });
});

describe("pending entries per consumer", () => {
  /** A stream `s` with group `g` and `entries` new entries. */
  async function stream(entries: number) {
    await server.client.xgroup("CREATE", "s", "g", "0", "MKSTREAM");
    for (let i = 0; i < entries; i++) await server.client.xadd("s", "*", "n", String(i));
  }
  const pendingText = (pel: number, requested: number, consumer = "c1") =>
    "ERR XReadGroup is cancelled. Pending Entries List limit per consumer is about to be reached." +
    ` Limit: 10, Current PEL size: ${pel}, Requested Read: ${requested}, Key: s, Group: g,` +
    ` Consumer: ${consumer}.`;

  it("refuses XREADGROUP > when pending + COUNT would pass the limit, with Upstash's text", async () => {
    await stream(20);
    await redis.xreadgroup("g", "c1", "s", ">", { count: 8 });
    expect(
      await postJson("/", ["XREADGROUP", "GROUP", "g", "c1", "COUNT", "3", "STREAMS", "s", ">"]),
    ).toEqual({ status: 400, body: { error: pendingText(8, 3) } });
    expect(idsOf(await redis.xreadgroup("g", "c1", "s", ">", { count: 2 }))).toHaveLength(2);
  });

  it("counts each consumer's pending entries apart", async () => {
    await stream(20);
    await redis.xreadgroup("g", "c1", "s", ">", { count: 10 });
    expect(idsOf(await redis.xreadgroup("g", "c2", "s", ">", { count: 10 }))).toHaveLength(10);
  });

  it("counts a read without COUNT as one entry: refused once the consumer is at the limit", async () => {
    await stream(20);
    await redis.xreadgroup("g", "c1", "s", ">", { count: 9 });
    await redis.xreadgroup("g", "c1", "s", ">", { count: 1 });
    await expect(redis.xreadgroup("g", "c1", "s", ">")).rejects.toThrow(pendingText(10, 1));
  });

  it("never refuses re-reading, acking or claiming pending entries at the limit", async () => {
    await stream(20);
    const ids = idsOf(await redis.xreadgroup("g", "c1", "s", ">", { count: 10 }));
    expect(idsOf(await redis.xreadgroup("g", "c1", "s", "0"))).toEqual(ids);
    expect(await redis.xclaim("s", "g", "c1", 0, ids[0]!)).toHaveLength(1);
    expect(await redis.xack("s", "g", ids)).toBe(10);
  });

  it("lets Redis answer for a group that does not exist", async () => {
    await expect(redis.xreadgroup("nogroup", "c1", "s", ">", { count: 1 })).rejects.toThrow(
      /NOGROUP/,
    );
  });

  it("refuses only that entry of a pipeline", async () => {
    await stream(20);
    await redis.xreadgroup("g", "c1", "s", ">", { count: 10 });
    const results = await redis
      .pipeline()
      .xreadgroup("g", "c1", "s", ">", { count: 1 })
      .xlen("s")
      .exec({ keepErrors: true });
    expect(results.map((r) => r.error ?? r.result)).toEqual([pendingText(10, 1), 20]);
  });

  it("refuses XREADGROUP inside a script, with Upstash's text", async () => {
    await stream(20);
    await redis.xreadgroup("g", "c1", "s", ">", { count: 5 });
    const script =
      "return redis.call('XREADGROUP', 'GROUP', 'g', 'c1', 'COUNT', ARGV[1], 'STREAMS', KEYS[1], '>')";
    const { body } = await postJson("/", ["EVAL", script, "1", "s", "6"]);
    expect(body).toEqual({ error: pendingText(5, 6) });
    expect(idsOf(await redis.eval(script, ["s"], ["5"]))).toHaveLength(5);
  });
});

describe("scripts", () => {
  const sha1 = (source: string) => createHash("sha1").update(source).digest("hex");

  it("accepts Upstash's allow-key-locking shebang flag, and the script can write", async () => {
    const source = "#!lua flags=allow-key-locking\nreturn redis.call('SET', KEYS[1], ARGV[1])";
    expect(await redis.eval(source, ["k"], ["v"])).toBe("OK");
    expect(await redis.createScript(source).exec(["k2"], ["v2"])).toBe("OK");
    expect(await server.client.mget("k", "k2")).toEqual(["v", "v2"]);
  });

  it("keeps the shebang's other flags when it drops allow-key-locking", async () => {
    const source =
      "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET', KEYS[1], 'v')";
    await expect(redis.eval(source, ["k"], [])).rejects.toThrow(
      /Write commands are not allowed from read-only scripts/,
    );
  });

  it("answers SCRIPT LOAD with the original's SHA1, which EVALSHA and SCRIPT EXISTS accept", async () => {
    const source = "return redis.call('INCR', KEYS[1])";
    expect(await redis.scriptLoad(source)).toBe(sha1(source));
    expect(await redis.scriptExists(sha1(source))).toEqual([1]);
    expect(await redis.evalsha(sha1(source), ["n"], [])).toBe(1);
  });

  it("after SCRIPT FLUSH, EVALSHA gets Redis' NOSCRIPT and createScript falls back to EVAL", async () => {
    const source = "return redis.call('INCR', KEYS[1])";
    await redis.scriptLoad(source);
    await redis.scriptFlush();
    expect(await redis.scriptExists(sha1(source))).toEqual([0]);
    await expect(redis.evalsha(sha1(source), ["n"], [])).rejects.toThrow(
      "NOSCRIPT No matching script. Please use EVAL.",
    );
    const counted = await countCommands(server.client, () =>
      redis.createScript(source).exec(["n"], []),
    );
    expect(counted.byCommand).toEqual({ evalsha: 1, eval: 1, incr: 1 });
  });

  it("passes NOSCRIPT on when Redis lost the rewritten script, and EVAL brings it back", async () => {
    const script = redis.createScript("return redis.call('INCR', KEYS[1])");
    await script.exec(["n"], []);
    await server.client.script("FLUSH"); // as a Redis restart would: the bridge's map is intact
    const counted = await countCommands(server.client, () => script.exec(["n"], []));
    expect(counted.byCommand).toEqual({ evalsha: 1, eval: 1, incr: 1 });
    expect(await script.exec(["n"], [])).toBe(3);
  });

  it("keeps a Lua error's line number: the checks' prelude shares the first line", async () => {
    await expect(redis.eval("local a = 1\n\nreturn a + nil", [], [])).rejects.toThrow(
      /user_script:3:/,
    );
  });
});

describe("countCommands", () => {
  it("leaves out the bridge's probes, which Redis did run", async () => {
    await server.client.xgroup("CREATE", "s", "g", "0", "MKSTREAM");
    const counted = await countCommands(server.client, async () => {
      await redis.xadd("s", "*", { f: "v" });
      await redis.xreadgroup("g", "c", "s", ">", { count: 1 });
      await redis.eval("return redis.call('SET', KEYS[1], 'v')", ["k"], []);
    });
    expect(counted).toEqual({ total: 4, byCommand: { xadd: 1, xreadgroup: 1, eval: 1, set: 1 } });
    const stats = await server.client.info("commandstats");
    expect(stats).toMatch(/^cmdstat_memory\|usage:calls=2,/m);
    expect(stats).toMatch(/^cmdstat_xinfo\|consumers:calls=1,/m);
  });
});

describe("database capacity (maxDataBytes)", () => {
  /** A server and bridge of this test's own: maxmemory is server-wide. */
  async function startFull() {
    const own = await startRedisServer();
    const usedMemory = Number(/used_memory:(\d+)/.exec(await own.client.info("memory"))?.[1]);
    const ownBridge = await startBridge({
      redisUrl: own.url,
      token: TOKEN,
      maxDataBytes: usedMemory + 512 * KiB,
    });
    onTestFinished(async () => {
      await ownBridge.close();
      await own.stop();
    });
    const client = new Redis({ url: ownBridge.url, token: TOKEN, automaticDeserialization: false });
    // 32 KiB values until Redis is over its maxmemory.
    for (let i = 0; i < 64; i++) {
      const error = await client.set(`k${i}`, text(32 * KiB)).then(
        () => undefined,
        (e: Error) => e,
      );
      if (error) return { client, error };
    }
    throw new Error("maxmemory was never reached");
  }

  it("refuses writes over capacity with Upstash's text, and still reads and deletes", async () => {
    const { client, error } = await startFull();
    expect(error.message).toBe("Command failed: ERR DB capacity quota exceeded");
    expect(await client.get("k0")).toHaveLength(32 * KiB);
    expect(await client.del("k0")).toBe(1);
  });

  it("gives a script's redis.pcall the capacity error in Upstash's words", async () => {
    const { client } = await startFull();
    const script = "return redis.pcall('SET', KEYS[1], ARGV[1]).err";
    expect(await client.eval(script, ["more"], [text(32 * KiB)])).toBe(
      "ERR DB capacity quota exceeded",
    );
  });
});
