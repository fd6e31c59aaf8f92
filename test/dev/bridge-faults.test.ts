// The bridge's fault injection: requests that fail on purpose the ways a request to Upstash
// fails, so a test can ask "what if the reply never came back?". Driven by @upstash/redis (with
// its automatic retry on network errors, fast) against a throwaway redis-server.

import { Redis } from "@upstash/redis";
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { bridgeOptionsFromEnv, parseFaults } from "../../dev/bridge-env.ts";
import { faultInjector } from "../../dev/bridge-faults.ts";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.ts";

const TOKEN = "test-bridge-token";

let server: RedisServer;
let bridge: Bridge;
/** Retries a network error as the product's client does, only without the waiting. */
let redis: Redis;
/** Never retries: a network error shows. */
let once: Redis;

const client = (url: string, retry: boolean) =>
  new Redis({
    url,
    token: TOKEN,
    automaticDeserialization: false,
    enableAutoPipelining: false,
    // `retry: false` still sends a request twice (@upstash/redis 1.39); 0 retries sends it once.
    retry: { retries: retry ? 3 : 0, backoff: () => 5 },
  });

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startBridge({ redisUrl: server.url, token: TOKEN });
  redis = client(bridge.url, true);
  once = client(bridge.url, false);
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

beforeEach(async () => {
  bridge.faults.clear();
  await server.client.flushall();
});

/** How many of each kind the bridge injected while `run` ran. */
async function injectedDuring(run: () => Promise<unknown>) {
  const before = { ...bridge.faults.injected };
  await run();
  const after = bridge.faults.injected;
  return Object.fromEntries(
    Object.entries(after).map(([kind, n]) => [kind, n - before[kind as keyof typeof before]]),
  );
}

describe("fault kinds", () => {
  it("drop-reply runs the command, then hangs up: the client's retry runs it again", async () => {
    bridge.faults.add({ kind: "drop-reply", match: ["INCR"], times: 1 });
    const injected = await injectedDuring(async () => {
      expect(await redis.incr("n")).toBe(2);
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(await server.client.get("n")).toBe("2");
  });

  it("drop-reply shows the caller a network error when it does not retry", async () => {
    bridge.faults.add({ kind: "drop-reply", match: ["INCR"], times: 1 });
    await expect(once.incr("n")).rejects.toThrow(TypeError);
    expect(await server.client.get("n")).toBe("1");
  });

  it("refuse hangs up before running anything: the retry runs it once", async () => {
    bridge.faults.add({ kind: "refuse", match: ["INCR"], times: 1 });
    const injected = await injectedDuring(async () => {
      expect(await redis.incr("n")).toBe(1);
    });
    expect(injected.refuse).toBe(1);
  });

  it("refuse leaves nothing behind when the caller does not retry", async () => {
    bridge.faults.add({ kind: "refuse", match: ["SET"], times: 1 });
    await expect(once.set("k", "v")).rejects.toThrow(TypeError);
    expect(await server.client.exists("k")).toBe(0);
  });

  it("unavailable answers 503 UNAVAILABLE and runs nothing", async () => {
    bridge.faults.add({ kind: "unavailable", match: ["SET"] });
    const res = await fetch(`${bridge.url}/set/k/v`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ error: expect.stringMatching(/^UNAVAILABLE /) });
    await expect(redis.set("k", "v")).rejects.toThrow(/UNAVAILABLE/);
    expect(await server.client.exists("k")).toBe(0);
  });

  it("delay holds the request for delayMs, then runs it", async () => {
    bridge.faults.add({ kind: "delay", match: ["SET"], delayMs: 300 });
    const started = performance.now();
    const slow = redis.set("k", "slow");
    // A request that arrives later but is not delayed is answered first.
    expect(await redis.get("k")).toBeNull();
    expect(await slow).toBe("OK");
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(bridge.faults.injected.delay).toBeGreaterThanOrEqual(1);
  });
});

describe("matching", () => {
  it("matches command names in any case, on any command of a pipeline", async () => {
    bridge.faults.add({ kind: "unavailable", match: ["xadd"] });
    const pipeline = once.pipeline().set("a", "1").xadd("s", "*", { f: "v" });
    await expect(pipeline.exec()).rejects.toThrow(/UNAVAILABLE/);
    expect(await once.pipeline().set("a", "1").get("a").exec()).toEqual(["OK", "1"]);
  });

  it("matches the script call itself (EVALSHA), not the commands the script runs", async () => {
    const script = redis.createScript<number>("return redis.call('INCR', KEYS[1])");
    await script.exec(["n"], []); // loaded: later calls are one EVALSHA each
    bridge.faults.add({ kind: "drop-reply", match: ["EVALSHA"], times: 1 });
    expect(await script.exec(["n"], [])).toBe(3);
    bridge.faults.add({ kind: "unavailable", match: ["INCR"] });
    expect(await script.exec(["n"], [])).toBe(4);
  });

  it("takes a predicate over the request's commands", async () => {
    bridge.faults.add({ kind: "unavailable", match: (commands) => commands.length > 1 });
    expect(await once.set("a", "1")).toBe("OK");
    await expect(once.pipeline().get("a").get("a").exec()).rejects.toThrow(/UNAVAILABLE/);
  });

  it("applies a rule at most `times` times", async () => {
    bridge.faults.add({ kind: "unavailable", match: ["INCR"], times: 2 });
    await expect(once.incr("n")).rejects.toThrow(/UNAVAILABLE/);
    await expect(once.incr("n")).rejects.toThrow(/UNAVAILABLE/);
    expect(await once.incr("n")).toBe(1);
  });

  it("applies the first rule that fires, in the order they were added", async () => {
    bridge.faults.add({ kind: "unavailable", match: ["INCR"] });
    bridge.faults.add({ kind: "delay", delayMs: 1 });
    const injected = await injectedDuring(() => expect(once.incr("n")).rejects.toThrow());
    expect(injected).toMatchObject({ unavailable: 1, delay: 0 });
  });

  it("stops applying a rule once its remover is called, or on clear()", async () => {
    const remove = bridge.faults.add({ kind: "unavailable" });
    await expect(once.set("a", "1")).rejects.toThrow(/UNAVAILABLE/);
    remove();
    expect(await once.set("a", "1")).toBe("OK");
    bridge.faults.add({ kind: "unavailable" });
    bridge.faults.clear();
    expect(await once.set("a", "1")).toBe("OK");
  });

  it("refuses a rule it cannot apply", () => {
    expect(() => bridge.faults.add({ kind: "delay" })).toThrow(/delayMs/);
    expect(() => bridge.faults.add({ kind: "refuse", rate: 2 })).toThrow(/rate/);
  });
});

describe("rate", () => {
  /** Which of `n` requests a rule of `rate` hits, drawn from `seed`. */
  const pattern = (seed: number, rate: number, n = 200) => {
    const faults = faultInjector(seed, [{ kind: "refuse", rate }]);
    return Array.from({ length: n }, () => (faults.pick([]) ? 1 : 0));
  };

  it("hits about `rate` of the matching requests", () => {
    const hits = pattern(1, 0.25).reduce((sum: number, hit) => sum + hit, 0);
    expect(hits).toBeGreaterThan(25);
    expect(hits).toBeLessThan(75);
  });

  it("draws the same faults from the same seed, and others from another", () => {
    expect(pattern(7, 0.5)).toEqual(pattern(7, 0.5));
    expect(pattern(7, 0.5)).not.toEqual(pattern(8, 0.5));
  });

  it("uses the bridge's seed option for its draws", async () => {
    const own = await startBridge({ redisUrl: server.url, token: TOKEN, seed: 42 });
    onTestFinished(() => own.close());
    own.faults.add({ kind: "unavailable", rate: 0.5 });
    const ownClient = client(own.url, false);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) {
      seen.push(
        await ownClient.ping().then(
          () => 0,
          () => 1,
        ),
      );
    }
    expect(seen).toEqual(
      (() => {
        const faults = faultInjector(42, [{ kind: "unavailable", rate: 0.5 }]);
        return seen.map(() => (faults.pick([]) ? 1 : 0));
      })(),
    );
  });
});

describe("environment knobs", () => {
  it.each([
    ["", []],
    ["drop-reply=0.02", [{ kind: "drop-reply", rate: 0.02 }]],
    [
      "drop-reply=0.02, refuse=0.01,delay=0.05:200",
      [
        { kind: "drop-reply", rate: 0.02 },
        { kind: "refuse", rate: 0.01 },
        { kind: "delay", rate: 0.05, delayMs: 200 },
      ],
    ],
    ["unavailable=1", [{ kind: "unavailable", rate: 1 }]],
  ])("reads BRIDGE_FAULTS=%j", (text, rules) => {
    expect(parseFaults(text)).toEqual(rules);
  });

  it.each([
    ["drop=0.1", /no kind drop/],
    ["refuse", /is not kind=rate/],
    ["refuse=1.5", /outside 0\.\.1/],
    ["delay=0.1", /needs :delayMs/],
    ["refuse=0.1:200", /needs :delayMs/],
  ])("refuses BRIDGE_FAULTS=%j, naming the variable", (text, why) => {
    expect(() => parseFaults(text)).toThrow(/^BRIDGE_FAULTS: /);
    expect(() => parseFaults(text)).toThrow(why);
  });

  it("reads the limits as positive integers, naming a wrong one", () => {
    expect(bridgeOptionsFromEnv({ BRIDGE_MAX_RECORD_BYTES: "65536" })).toMatchObject({
      maxRecordBytes: 65_536,
      maxRequestBytes: undefined,
      faults: [],
    });
    expect(() => bridgeOptionsFromEnv({ BRIDGE_MAX_REQUEST_BYTES: "10MB" })).toThrow(
      'BRIDGE_MAX_REQUEST_BYTES must be an integer, got "10MB"',
    );
    expect(() => bridgeOptionsFromEnv({ BRIDGE_MAX_RECORD_BYTES: "0" })).toThrow(
      "BRIDGE_MAX_RECORD_BYTES must be above 0",
    );
  });
});
