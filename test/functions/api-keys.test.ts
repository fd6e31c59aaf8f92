import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { as, createKey, errorOf } from "../helpers/keys.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** Every string Redis holds for the test's keyspace: key names, fields, values, stream entries. */
async function everythingStored(): Promise<string> {
  const parts: string[] = [];
  for (const key of await stack.redis.keys("*")) {
    parts.push(key);
    const type = await stack.redis.type(key);
    if (type === "string") parts.push((await stack.redis.get(key)) ?? "");
    if (type === "hash") parts.push(JSON.stringify(await stack.redis.hgetall(key)));
    if (type === "stream") parts.push(JSON.stringify(await stack.redis.xrange(key, "-", "+")));
  }
  return parts.join("\n");
}

const keyCount = () => stack.redis.hlen(stack.keys.apiKeys());

describe("making, listing and deleting API keys", () => {
  it("shows the secret once and stores only its SHA-256", async () => {
    const key = await createKey(stack, { name: "shown-once", scopes: ["read"] });
    expect(key).toEqual({
      id: expect.stringMatching(/^key_[a-z2-7]{16}$/),
      name: "shown-once",
      scopes: ["read"],
      channels: ["*"],
      rateLimit: null,
      createdAt: expect.any(String),
      secret: expect.stringMatching(/^sk_[A-Za-z0-9_-]{43}$/),
    });

    const listed = (await (await stack.api("/v1/keys")).json()) as { keys: unknown[] };
    const { secret, ...withoutSecret } = key;
    expect(listed.keys).toContainEqual(withoutSecret);
    expect(JSON.stringify(listed)).not.toContain(secret);

    const stored = await stack.redis.hget(stack.keys.apiKeys(), sha256(secret));
    expect(JSON.parse(stored!)).toEqual(withoutSecret);
    expect(await everythingStored()).not.toContain(secret);
  });

  it("authenticates a request bearing the secret", async () => {
    const key = await createKey(stack, { name: "bearer", scopes: ["read"] });
    expect((await as(stack, key.secret).api("/v1/channels")).status).toBe(200);
  });

  it("refuses a deleted key with 401 on its very next request", async () => {
    const key = await createKey(stack, { name: "deleted", scopes: ["read"] });
    const client = as(stack, key.secret);
    expect((await client.api("/v1/channels")).status).toBe(200);

    const res = await stack.api(`/v1/keys/${key.id}`, { method: "DELETE" });
    expect(res.status).toBe(204);
    expect((await errorOf(await client.api("/v1/channels"), 401)).code).toBe("unauthorized");
    expect(await stack.redis.hget(stack.keys.apiKeys(), sha256(key.secret))).toBeNull();
    const listed = (await (await stack.api("/v1/keys")).json()) as { keys: { id: string }[] };
    expect(listed.keys.map((k) => k.id)).not.toContain(key.id);
  });

  it("answers 404 key_not_found for a key that does not exist (or no longer)", async () => {
    const key = await createKey(stack, { name: "twice", scopes: ["read"] });
    expect((await stack.api(`/v1/keys/${key.id}`, { method: "DELETE" })).status).toBe(204);
    const again = await stack.api(`/v1/keys/${key.id}`, { method: "DELETE" });
    expect((await errorOf(again, 404)).code).toBe("key_not_found");
  });

  it("refuses a token that looks like a key but is none, with 401", async () => {
    const key = await createKey(stack, { name: "almost", scopes: ["read"] });
    const wrong = `${key.secret.slice(0, -1)}${key.secret.endsWith("A") ? "B" : "A"}`;
    expect((await errorOf(await as(stack, wrong).api("/v1/channels"), 401)).code).toBe(
      "unauthorized",
    );
  });
});

describe("who may manage keys", () => {
  it.each([["publish"], ["read"], ["subscribe"]])(
    "refuses a %s key on every key route with 403 naming admin",
    async (scope) => {
      const key = await createKey(stack, {
        name: `not-admin-${scope}`,
        scopes: ["publish", "read", "subscribe"],
      });
      const client = as(stack, key.secret);
      const before = await keyCount();
      for (const res of [
        await client.post("/v1/keys", { name: "escalated", scopes: ["admin"] }),
        await client.api("/v1/keys"),
        await client.send("DELETE", `/v1/keys/${key.id}`),
      ]) {
        const error = await errorOf(res, 403);
        expect(error.code).toBe("forbidden");
        expect(error.message).toContain('"admin"');
      }
      expect(await keyCount()).toBe(before);
      expect((await client.api("/v1/channels")).status).toBe(200);
    },
  );

  it("lets an admin key make, list and delete keys", async () => {
    const admin = as(stack, (await createKey(stack, { name: "admin", scopes: ["admin"] })).secret);
    const res = await admin.post("/v1/keys", { name: "made-by-admin", scopes: ["publish"] });
    expect(res.status).toBe(201);
    const made = (await res.json()) as { id: string };
    expect((await admin.api("/v1/keys")).status).toBe(200);
    expect((await admin.send("DELETE", `/v1/keys/${made.id}`)).status).toBe(204);
  });

  it("refuses an admin key limited to some channels, which could otherwise widen itself", async () => {
    const key = await createKey(stack, {
      name: "admin-of-orders",
      scopes: ["admin"],
      channels: ["orders"],
    });
    const before = await keyCount();
    const error = await errorOf(
      await as(stack, key.secret).post("/v1/keys", { name: "wider", scopes: ["admin"] }),
      403,
    );
    expect(error.message).toMatch(/every channel/);
    expect(await keyCount()).toBe(before);
  });
});

describe("POST /v1/keys input", () => {
  const valid = { name: "valid", scopes: ["read"] };
  it.each<[string, Record<string, unknown>, string]>([
    ["an empty name", { ...valid, name: "" }, "body.name"],
    ["a name over 128 characters", { ...valid, name: "n".repeat(129) }, "body.name"],
    ["no scopes", { ...valid, scopes: [] }, "body.scopes"],
    ["a repeated scope", { ...valid, scopes: ["read", "read"] }, "body.scopes"],
    ["an unknown scope", { ...valid, scopes: ["root"] }, "body.scopes[0]"],
    ["a channel pattern with a slash", { ...valid, channels: ["a/b"] }, "body.channels[0]"],
    ["no channels", { ...valid, channels: [] }, "body.channels"],
    [
      "a rate limit of 0 requests",
      { ...valid, rateLimit: { requests: 0, windowMs: 1000 } },
      "body.rateLimit.requests",
    ],
    [
      "a window under a second",
      { ...valid, rateLimit: { requests: 1, windowMs: 10 } },
      "body.rateLimit.windowMs",
    ],
    ["a field it does not know", { ...valid, secret: "sk_mine" }, "body"],
  ])("refuses %s with 400 and writes nothing", async (_, body, field) => {
    const before = await everythingStored();
    const error = await errorOf(await stack.post("/v1/keys", body), 400);
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain(field);
    expect(await everythingStored()).toBe(before);
  });

  it("refuses a body that is not JSON with 400 invalid_json", async () => {
    const before = await keyCount();
    const res = await stack.api("/v1/keys", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    expect((await errorOf(res, 400)).code).toBe("invalid_json");
    expect(await keyCount()).toBe(before);
  });
});

describe("scopes", () => {
  const CH = "scoped";
  const SUB = `/v1/channels/${CH}/subscriptions/sub`;
  const url = "http://127.0.0.1:9/";

  beforeAll(async () => {
    await stack.post(`/v1/channels/${CH}/messages`, { data: "seed" });
    await subscribe(stack, CH, { name: "sub", url });
  });

  // Each route with the scope it needs and its answer to a key holding exactly that scope.
  const routes: [scope: string, method: string, path: string, body: unknown, status: number][] = [
    ["publish", "POST", `/v1/channels/${CH}/messages`, { data: 1 }, 201],
    ["read", "GET", "/v1/channels", undefined, 200],
    ["read", "GET", `/v1/channels/${CH}`, undefined, 200],
    ["read", "GET", `/v1/channels/${CH}/messages`, undefined, 200],
    ["read", "GET", `/v1/channels/${CH}/subscriptions`, undefined, 200],
    ["read", "GET", SUB, undefined, 200],
    ["read", "GET", `${SUB}/attempts`, undefined, 200],
    ["read", "GET", "/v1/metrics", undefined, 200],
    ["subscribe", "POST", `/v1/channels/${CH}/subscriptions`, { name: "new", url }, 201],
    ["subscribe", "PATCH", SUB, { batchSize: 5 }, 200],
    ["subscribe", "POST", `${SUB}/rotate-secret`, undefined, 200],
    ["subscribe", "POST", `${SUB}/replay`, { from: "earliest" }, 200],
    ["subscribe", "GET", `${SUB}/dead-letters`, undefined, 200],
    ["subscribe", "POST", `${SUB}/dead-letters/redrive`, undefined, 200],
    ["subscribe", "DELETE", `${SUB}/dead-letters`, undefined, 200],
    ["admin", "PATCH", `/v1/channels/${CH}`, { retention: { maxMessages: 1000 } }, 200],
    ["admin", "POST", "/v1/deliver", undefined, 200],
    ["admin", "GET", "/v1/keys", undefined, 200],
  ];

  it.each(routes)("%s: %s %s", async (scope, method, path, body, status) => {
    const exact = await createKey(stack, { name: `only-${scope}`, scopes: [scope] });
    const others = ["publish", "read", "subscribe"].filter((s) => s !== scope);
    const lacking = await createKey(stack, { name: `not-${scope}`, scopes: others });

    const stream = stack.keys.channel(CH);
    const lengthBefore = await stack.redis.xlen(stream);
    const subsBefore = await stack.redis.hgetall(stack.keys.subscriptions(CH));
    const error = await errorOf(await as(stack, lacking.secret).send(method, path, body), 403);
    expect(error.code).toBe("forbidden");
    expect(error.message).toContain(`lacks the "${scope}" scope`);
    expect(await stack.redis.xlen(stream)).toBe(lengthBefore);
    expect(await stack.redis.hgetall(stack.keys.subscriptions(CH))).toEqual(subsBefore);

    const res = await as(stack, exact.secret).send(method, path, body);
    expect(res.status, await res.clone().text()).toBe(status);
    if (path === `/v1/channels/${CH}/subscriptions`) {
      await stack.api(`${path}/new`, { method: "DELETE" });
    }
  });

  it("lets an admin key do what every other scope does", async () => {
    const admin = as(stack, (await createKey(stack, { name: "all", scopes: ["admin"] })).secret);
    expect((await admin.post(`/v1/channels/${CH}/messages`, { data: 2 })).status).toBe(201);
    expect((await admin.api(`/v1/channels/${CH}`)).status).toBe(200);
    expect((await admin.send("PATCH", SUB, { batchSize: 6 })).status).toBe(200);
  });

  it("shows a read key subscriptions without their secrets", async () => {
    const reader = as(stack, (await createKey(stack, { name: "r", scopes: ["read"] })).secret);
    const text = await (await reader.api(SUB)).text();
    expect(text).not.toMatch(/secret|whsec_/);
  });

  it("lets only admin delete a channel", async () => {
    await stack.post("/v1/channels/doomed/messages", { data: 1 });
    const all = ["publish", "read", "subscribe"];
    const lacking = as(stack, (await createKey(stack, { name: "x", scopes: all })).secret);
    const error = await errorOf(await lacking.send("DELETE", "/v1/channels/doomed"), 403);
    expect(error.message).toContain('lacks the "admin" scope');
    expect(await stack.redis.exists(stack.keys.channel("doomed"))).toBe(1);

    const admin = as(stack, (await createKey(stack, { name: "y", scopes: ["admin"] })).secret);
    expect((await admin.send("DELETE", "/v1/channels/doomed")).status).toBe(200);
  });
});

describe("channel patterns", () => {
  beforeAll(async () => {
    for (const channel of ["team-a.orders", "team-a.invoices", "team-b.orders"]) {
      await stack.post(`/v1/channels/${channel}/messages`, {
        messages: [{ data: 1 }, { data: 2 }],
      });
    }
  });

  it("lets a key use the channels its patterns match and refuses the rest, naming the channel", async () => {
    const key = await createKey(stack, {
      name: "team-a",
      scopes: ["publish", "read"],
      channels: ["team-a.*"],
    });
    const client = as(stack, key.secret);
    expect((await client.api("/v1/channels/team-a.orders")).status).toBe(200);
    expect((await client.post("/v1/channels/team-a.new/messages", { data: 1 })).status).toBe(201);

    const length = await stack.redis.xlen(stack.keys.channel("team-b.orders"));
    const error = await errorOf(
      await client.post("/v1/channels/team-b.orders/messages", { data: 1 }),
      403,
    );
    expect(error.code).toBe("forbidden");
    expect(error.message).toContain('channel "team-b.orders"');
    expect(await stack.redis.xlen(stack.keys.channel("team-b.orders"))).toBe(length);
    await errorOf(await client.api("/v1/channels/team-b.orders/messages"), 403);
  });

  it("lists only the channels a key may see, with totals over those", async () => {
    const key = await createKey(stack, {
      name: "team-a-reader",
      scopes: ["read"],
      channels: ["team-a.orders", "team-a.inv*"],
    });
    const res = await as(stack, key.secret).api("/v1/channels");
    const body = (await res.json()) as {
      channels: { name: string; length: number; sizeBytes: number }[];
      totals: { channels: number; messages: number; sizeBytes: number };
    };
    expect(body.channels.map((c) => c.name)).toEqual(["team-a.invoices", "team-a.orders"]);
    expect(body.totals).toEqual({
      channels: 2,
      messages: body.channels[0]!.length + body.channels[1]!.length,
      sizeBytes: body.channels[0]!.sizeBytes + body.channels[1]!.sizeBytes,
    });
  });

  it("refuses POST /v1/deliver to an admin key limited to some channels", async () => {
    const key = await createKey(stack, {
      name: "admin-a",
      scopes: ["admin"],
      channels: ["team-a.*"],
    });
    const client = as(stack, key.secret);
    expect((await errorOf(await client.post("/v1/deliver", undefined), 403)).message).toMatch(
      /every channel/,
    );
    const patched = await client.send("PATCH", "/v1/channels/team-a.orders", {
      retention: { maxMessages: 100 },
    });
    expect(patched.status).toBe(200);
  });
});

describe("the OpenAPI document", () => {
  it("names the scope of every /v1 route, and its 401, 403 and 429 answers", async () => {
    const doc = (await (await fetch(`${stack.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { "x-scope"?: string; responses: object }>>;
    };
    const routes = Object.entries(doc.paths).filter(([path]) => path.startsWith("/v1/"));
    expect(routes.length).toBeGreaterThan(10);
    for (const [path, operations] of routes) {
      for (const [method, operation] of Object.entries(operations)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(["publish", "read", "subscribe", "admin"], where).toContain(operation["x-scope"]);
        expect(Object.keys(operation.responses), where).toEqual(
          expect.arrayContaining(["401", "403", "429"]),
        );
      }
    }
  });
});
