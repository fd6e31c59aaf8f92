import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(() => stack?.stop());

interface Page {
  messages: { id: string; type: string | null; data: unknown; publishedAt: string }[];
  next: string | null;
}

async function publishMany(channel: string, count: number): Promise<string[]> {
  const messages = Array.from({ length: count }, (_, i) => ({ data: { n: i }, type: "n" }));
  const res = await stack.post(`/v1/channels/${channel}/messages`, { messages });
  return ((await res.json()) as { ids: string[] }).ids;
}

describe("GET /health", () => {
  it("answers 200 ok without a token while Redis answers", async () => {
    const res = await fetch(`${stack.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
  });
});

describe("GET /v1/channels", () => {
  it("lists every channel with its length, subscriptions and last id, by name", async () => {
    const ids = await publishMany("list-b", 3);
    await publishMany("list-a", 1);
    const res = await stack.api("/v1/channels");
    expect(res.status).toBe(200);
    const { channels } = (await res.json()) as {
      channels: { name: string; length: number; subscriptions: number; lastId: string }[];
    };
    const names = channels.map((c) => c.name);
    expect(names).toEqual([...names].sort());
    expect(channels.find((c) => c.name === "list-b")).toEqual({
      name: "list-b",
      length: 3,
      subscriptions: 0,
      lastId: ids[2],
      sizeBytes: expect.any(Number),
    });
  });

  it("reads the registry, never the keyspace", async () => {
    await publishMany("registry-only", 1);
    await stack.redis.set("unrelated:key", "1");
    const { channels } = (await (await stack.api("/v1/channels")).json()) as {
      channels: { name: string }[];
    };
    expect(channels.map((c) => c.name)).not.toContain("unrelated:key");
    const stats = (await stack.redis.info("commandstats")) as string;
    expect(stats).not.toMatch(/cmdstat_(scan|keys):/);
  });
});

describe("GET /v1/channels/{channel}", () => {
  it("describes the channel: length, first and last ids and times, subscriptions", async () => {
    const ids = await publishMany("described", 4);
    const res = await stack.api("/v1/channels/described");
    expect(res.status).toBe(200);
    const info = (await res.json()) as Record<string, unknown>;
    expect(info).toMatchObject({
      name: "described",
      length: 4,
      firstId: ids[0],
      lastId: ids[3],
      subscriptions: 0,
    });
    expect(Date.parse(info.lastPublishedAt as string)).toBe(Number(ids[3]!.split("-")[0]));
  });
});

describe("GET /v1/channels/{channel}/messages", () => {
  it("returns history oldest first with type, data and publishedAt", async () => {
    const ids = await publishMany("history", 3);
    const page = (await (await stack.api("/v1/channels/history/messages")).json()) as Page;
    expect(page.messages.map((m) => m.id)).toEqual(ids);
    expect(page.messages[1]).toEqual({
      id: ids[1],
      type: "n",
      data: { n: 1 },
      publishedAt: new Date(Number(ids[1]!.split("-")[0])).toISOString(),
      // The publish sent no traceparent: the trace streamhook started (docs/tracing.md).
      traceparent: expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/),
    });
    expect(page.next).toBeNull();
  });

  it("pages with after and limit until next is null", async () => {
    const ids = await publishMany("paged", 25);
    const seen: string[] = [];
    let after: string | null = null;
    let pages = 0;
    do {
      const query: string = after ? `?limit=10&after=${after}` : "?limit=10";
      const page = (await (await stack.api(`/v1/channels/paged/messages${query}`)).json()) as Page;
      seen.push(...page.messages.map((m) => m.id));
      after = page.next;
      pages++;
    } while (after);
    expect(seen).toEqual(ids);
    expect(pages).toBe(3);
  });

  it("gives next null when the last page is exactly full", async () => {
    await publishMany("exact", 10);
    const page = (await (await stack.api("/v1/channels/exact/messages?limit=10")).json()) as Page;
    expect(page.messages).toHaveLength(10);
    expect(page.next).toBeNull();
  });

  it("rejects a limit outside 1..1000", async () => {
    await publishMany("limits", 1);
    for (const limit of [0, 1001, "ten"]) {
      const res = await stack.api(`/v1/channels/limits/messages?limit=${limit}`);
      expect(res.status, String(limit)).toBe(400);
    }
  });
});

describe("GET /openapi.json", () => {
  it("serves an OpenAPI 3.1 document describing every route", async () => {
    const res = await fetch(`${stack.url}/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, object> };
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/health",
        "/v1/channels",
        "/v1/channels/{channel}",
        "/v1/channels/{channel}/messages",
      ]),
    );
    expect(Object.keys(doc.paths["/v1/channels/{channel}/messages"]!)).toEqual(
      expect.arrayContaining(["get", "post"]),
    );
  });
});
