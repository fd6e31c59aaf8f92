import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { as, createKey, errorOf } from "../helpers/keys.ts";
import { type CommandCounts, countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The limit is a fixed window: the count starts again at every multiple of windowMs (since the
// epoch). A test that must stay inside one window starts right after a boundary.
async function startOfWindow(windowMs: number, room = windowMs / 2): Promise<void> {
  const into = Date.now() % windowMs;
  if (windowMs - into < room) await sleep(windowMs - into + 20);
}

describe("a key's rate limit", () => {
  it("answers 429 rate_limited with Retry-After and RateLimit-* once over, writing nothing", async () => {
    const windowMs = 2000;
    const key = await createKey(stack, {
      name: "limited",
      scopes: ["publish"],
      rateLimit: { requests: 3, windowMs },
    });
    expect(key.rateLimit).toEqual({ requests: 3, windowMs });
    const client = as(stack, key.secret);
    const path = "/v1/channels/limited/messages";
    await startOfWindow(windowMs, 1500);

    for (const remaining of ["2", "1", "0"]) {
      const res = await client.post(path, { data: remaining });
      expect(res.status).toBe(201);
      expect(res.headers.get("ratelimit-limit")).toBe("3");
      expect(res.headers.get("ratelimit-remaining")).toBe(remaining);
    }
    const length = await stack.redis.xlen(stack.keys.channel("limited"));

    const res = await client.post(path, { data: "over" });
    const error = await errorOf(res.clone(), 429);
    expect(error.code).toBe("rate_limited");
    expect(error.message).toContain("3 requests per 2000 ms");
    const retryAfter = Number(res.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);
    expect(res.headers.get("ratelimit-limit")).toBe("3");
    expect(res.headers.get("ratelimit-remaining")).toBe("0");
    expect(Number(res.headers.get("ratelimit-reset"))).toBeLessThanOrEqual(retryAfter);
    expect(await stack.redis.xlen(stack.keys.channel("limited"))).toBe(length);

    // Retry-After is when the window ends: the next request after it passes.
    await sleep(retryAfter * 1000);
    const again = await client.post(path, { data: "after the window" });
    expect(again.status).toBe(201);
    expect(again.headers.get("ratelimit-remaining")).toBe("2");
  });

  it("counts each key on its own", async () => {
    const body = { scopes: ["read"], rateLimit: { requests: 1, windowMs: 60_000 } };
    const first = as(stack, (await createKey(stack, { name: "one", ...body })).secret);
    const second = as(stack, (await createKey(stack, { name: "two", ...body })).secret);
    await startOfWindow(60_000, 5000);
    expect((await first.api("/v1/channels")).status).toBe(200);
    expect((await first.api("/v1/channels")).status).toBe(429);
    expect((await second.api("/v1/channels")).status).toBe(200);
  });

  it("never limits API_TOKEN, nor a key without a rateLimit", async () => {
    const key = await createKey(stack, { name: "unlimited", scopes: ["read"] });
    for (let i = 0; i < 20; i++) {
      const [root, unlimited] = [
        await stack.api("/v1/channels"),
        await as(stack, key.secret).api("/v1/channels"),
      ];
      expect(root.status).toBe(200);
      expect(unlimited.status).toBe(200);
      expect(root.headers.get("ratelimit-limit")).toBeNull();
      expect(unlimited.headers.get("ratelimit-limit")).toBeNull();
    }
  });
});

describe("what authentication costs", () => {
  const path = "/v1/channels/costed";
  beforeAll(async () => {
    await stack.post(`${path}/messages`, { data: 1 });
  });

  const counted = (run: () => Promise<Response>, status = 200) =>
    countCommands(stack.redis, async () => expect((await run()).status).toBe(status));

  // The commands a request with a key cost beyond the same request with API_TOKEN: the route
  // itself costs the same either way (its own HGET and scripts included).
  function extra(withKey: CommandCounts, root: CommandCounts): Record<string, number> {
    const names = new Set([...Object.keys(withKey.byCommand), ...Object.keys(root.byCommand)]);
    const out: Record<string, number> = {};
    for (const name of names) {
      const more = (withKey.byCommand[name] ?? 0) - (root.byCommand[name] ?? 0);
      if (more !== 0) out[name] = more;
    }
    return out;
  }

  it("is 1 HGET for a key, nothing for API_TOKEN", async () => {
    const key = await createKey(stack, { name: "costed", scopes: ["read"] });
    const root = await counted(() => stack.api(path));
    const withKey = await counted(() => as(stack, key.secret).api(path));
    expect(extra(withKey, root)).toEqual({ hget: 1 });
  });

  it("adds 1 EVALSHA + 1 INCRBY with a rate limit (and 1 PEXPIRE per window)", async () => {
    const windowMs = 60_000;
    const key = await createKey(stack, {
      name: "costed-limited",
      scopes: ["read"],
      rateLimit: { requests: 1000, windowMs },
    });
    const client = as(stack, key.secret);
    await startOfWindow(windowMs, 5000);
    const root = await counted(() => stack.api(path));
    // The first call of this isolate may also load the script (EVALSHA refused, then EVAL).
    expect(extra(await counted(() => client.api(path)), root)).toMatchObject({ pexpire: 1 });
    expect(extra(await counted(() => client.api(path)), root)).toEqual({
      hget: 1,
      evalsha: 1,
      incrby: 1,
    });
  });

  it("refuses a key again in the same window with its HGET alone", async () => {
    const windowMs = 60_000;
    const key = await createKey(stack, {
      name: "refused-twice",
      scopes: ["read"],
      rateLimit: { requests: 1, windowMs },
    });
    const client = as(stack, key.secret);
    await startOfWindow(windowMs, 5000);
    expect((await client.api(path)).status).toBe(200);
    // A refused request never reaches its route: what it costs is authentication and the limit.
    // The first refusal asks the limiter; the isolate then remembers the key is blocked.
    const refused = () => counted(() => client.api(path), 429);
    expect((await refused()).byCommand).toEqual({ hget: 1, evalsha: 1, incrby: 1 });
    expect((await refused()).byCommand).toEqual({ hget: 1 });
  });
});
