// The typed client (@streamhook/client, publisher side) against the real stack: publishing,
// retries that never store twice, typed errors, subscription management, history and attempt-log
// paging, metrics.

import { readFile } from "node:fs/promises";
import {
  type Clock,
  createStreamhookClient,
  type StreamhookClientOptions,
  StreamhookError,
} from "@streamhook/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPENAPI_JSON } from "../../dev/client-schema.ts";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { createKey } from "../helpers/keys.ts";
import { scrapeMetrics } from "../helpers/observe.ts";
import { startReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled } from "../helpers/schedule.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";
import { sleep } from "../helpers/subscriptions.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  // Cached in Redis, so the first try of a publish runs it (EVALSHA) rather than a NOSCRIPT.
  await loadScripts(stack, [PUBLISH_LUA]);
});
afterAll(() => stack?.stop());

/** A client of the stack that records each answer it got and each wait it made (really waited). */
function recordingClient(options: Partial<StreamhookClientOptions> = {}) {
  const answers: { method: string; path: string; status: number; retryAfter: string | null }[] = [];
  const waits: number[] = [];
  const clock: Clock = {
    now: () => Date.now(),
    sleep: async (ms) => {
      waits.push(ms);
      await sleep(ms);
    },
  };
  const send = options.fetch ?? ((request: Request) => fetch(request));
  const client = createStreamhookClient({
    baseUrl: stack.url,
    token: API_TOKEN,
    clock,
    ...options,
    fetch: async (request) => {
      const response = await send(request);
      const { pathname } = new URL(request.url);
      answers.push({
        method: request.method,
        path: pathname,
        status: response.status,
        retryAfter: response.headers.get("retry-after"),
      });
      return response;
    },
  });
  return { client, answers, waits };
}

/** The channel's stored messages as [id, data], oldest first, read from Redis itself. */
async function stored(channel: string) {
  const entries = await stack.redis.xrange(stack.keys.channel(channel), "-", "+");
  return entries.map(([id, fields]) => [id, JSON.parse(fields[fields.indexOf("d") + 1]!)]);
}

// The Worker could not learn whether its publish ran: the script's reply is lost, and so are
// the replies of the three tries of its recovery (shared/streams.ts), so it answers 503.
const LOST_PUBLISH_AND_RECOVERY = 4;

describe("publishing", () => {
  it("publishes one message and a batch, in order", async () => {
    const { client } = recordingClient();
    const one = await client.publish("orders", { type: "order.created", data: { orderId: 1 } });
    const batch = await client.publishBatch("orders", [
      { type: "order.paid", data: { orderId: 1 } },
      { data: "no type" },
    ]);
    expect(one.replayed).toBe(false);
    expect(batch.replayed).toBe(false);
    expect(await stored("orders")).toEqual([
      [one.id, { orderId: 1 }],
      [batch.ids[0], { orderId: 1 }],
      [batch.ids[1], "no type"],
    ]);
  });

  it("answers a repeated Idempotency-Key with the first ids, storing nothing", async () => {
    const { client } = recordingClient();
    const first = await client.publishBatch("idem", [{ data: 1 }, { data: 2 }], {
      idempotencyKey: "order-7",
    });
    const again = await client.publishBatch("idem", [{ data: 1 }, { data: 2 }], {
      idempotencyKey: "order-7",
    });
    expect(again).toEqual({ ids: first.ids, replayed: true });
    expect((await stored("idem")).length).toBe(2);
  });

  it("sends a publish again after a 503 whose publish was stored, and it is stored once", async () => {
    const { client, answers, waits } = recordingClient({ retry: { baseDelayMs: 100 } });
    const match = runsScript(PUBLISH_LUA, stack.keys.channel("lost"));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: LOST_PUBLISH_AND_RECOVERY });
    let published: { ids: string[]; replayed: boolean } | undefined;
    const injected = await injectedDuring(stack, async () => {
      published = await client.publishBatch("lost", [{ data: "a" }, { data: "b" }]);
    });
    expect(injected["drop-reply"]).toBe(LOST_PUBLISH_AND_RECOVERY);
    expect(answers.map((a) => a.status)).toEqual([503, 200]);
    expect(waits.length).toBe(1);
    expect(waits[0]).toBeGreaterThanOrEqual(50); // the backoff: no Retry-After on this 503
    expect(waits[0]).toBeLessThanOrEqual(100);
    expect(published!.replayed).toBe(true);
    expect(await stored("lost")).toEqual([
      [published!.ids[0], "a"],
      [published!.ids[1], "b"],
    ]);
  });

  it("sends a publish again when its answer never arrived, and it is stored once", async () => {
    let lost = 0;
    const { client } = recordingClient({
      retry: { baseDelayMs: 10 },
      // The request reaches the Worker and runs; its answer is lost on the way back.
      fetch: async (request) => {
        const response = await fetch(request);
        if (lost++ > 0) return response;
        await response.body?.cancel();
        throw new TypeError("fetch failed: the connection was reset");
      },
    });
    const published = await client.publish("cut", { data: "once" });
    expect(lost).toBe(2);
    expect(published.replayed).toBe(true);
    expect(await stored("cut")).toEqual([[published.id, "once"]]);
  });

  it("does not send again a request without an Idempotency-Key whose answer was lost", async () => {
    let sent = 0;
    const { client } = createRecordless(async (request) => {
      sent++;
      await (await fetch(request)).body?.cancel();
      throw new TypeError("fetch failed: the connection was reset");
    });
    await expect(
      client.subscriptions.create("cut", { name: "once", mode: "pull" }),
    ).rejects.toThrow(TypeError);
    expect(sent).toBe(1);
  });
});

/** A plain client with its own fetch, nothing recorded. */
function createRecordless(send: (request: Request) => Promise<Response>) {
  return { client: createStreamhookClient({ baseUrl: stack.url, token: API_TOKEN, fetch: send }) };
}

// The limit is a fixed window: the count starts again at every multiple of windowMs.
async function startOfWindow(windowMs: number): Promise<void> {
  const into = Date.now() % windowMs;
  if (windowMs - into < windowMs / 2) await sleep(windowMs - into + 20);
}

describe("rate limits and errors", () => {
  const windowMs = 2000;
  const limitedKey = (name: string) =>
    createKey(stack, { name, scopes: ["publish"], rateLimit: { requests: 1, windowMs } });

  it("waits what a 429's Retry-After asks, then publishes", async () => {
    const key = await limitedKey("one-per-window");
    const { client, answers, waits } = recordingClient({ token: key.secret });
    await startOfWindow(windowMs);
    await client.publish("limited", { data: "first" });
    const second = await client.publish("limited", { data: "second" });
    expect(answers.map((a) => a.status)).toEqual([201, 429, 201]);
    expect(waits).toEqual([Number(answers[1]!.retryAfter) * 1000]);
    expect((await stored("limited")).map(([id]) => id)).toContain(second.id);
    expect((await stored("limited")).length).toBe(2);
  });

  it("throws the API's error, typed, once its attempts are spent", async () => {
    const key = await limitedKey("no-retries");
    const { client, waits } = recordingClient({ token: key.secret, retry: { maxAttempts: 1 } });
    await startOfWindow(windowMs);
    await client.publish("limited-2", { data: "first" });
    const error = await client.publish("limited-2", { data: "second" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamhookError);
    expect(error).toMatchObject({ status: 429, code: "rate_limited" });
    expect((error as StreamhookError).message).toContain("1 requests per 2000 ms");
    expect(waits).toEqual([]);
  });

  it("does not wait for a Retry-After longer than maxDelayMs", async () => {
    const key = await limitedKey("impatient");
    const { client, waits } = recordingClient({ token: key.secret, retry: { maxDelayMs: 500 } });
    await startOfWindow(windowMs);
    await client.publish("limited-3", { data: "first" });
    await expect(client.publish("limited-3", { data: "second" })).rejects.toMatchObject({
      status: 429,
    });
    expect(waits).toEqual([]);
  });

  it("throws 404 subscription_not_found with the API's message", async () => {
    const { client } = recordingClient();
    await client.publish("known", { data: 1 });
    await expect(client.subscriptions.get("known", "nobody")).rejects.toMatchObject({
      name: "StreamhookError",
      status: 404,
      code: "subscription_not_found",
      message: 'no subscription "nobody" on channel "known"',
    });
  });
});

describe("managing subscriptions", () => {
  it("creates, lists, reads, changes, rotates, replays and deletes a push subscription", async () => {
    const { client } = recordingClient();
    const [first] = (await client.publishBatch("subs", [{ data: 1 }, { data: 2 }])).ids;
    const url = "http://127.0.0.1:9/hook"; // never delivered to: it starts from "latest"
    const created = await client.subscriptions.create("subs", { name: "billing", url });
    expect(created).toMatchObject({ name: "billing", channel: "subs", mode: "push", url });
    expect(created.secret).toMatch(/^whsec_/);

    expect((await client.subscriptions.list("subs")).map((s) => s.name)).toEqual(["billing"]);
    expect(await client.subscriptions.get("subs", "billing")).toMatchObject({ batchSize: 10 });

    const changed = await client.subscriptions.update("subs", "billing", {
      batchSize: 50,
      paused: true,
    });
    expect(changed).toMatchObject({ batchSize: 50, paused: true, status: "paused" });

    const rotated = await client.subscriptions.rotateSecret("subs", "billing");
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(created.secret);

    const replaying = await client.subscriptions.replay("subs", "billing", "earliest");
    expect(replaying.replayFrom).toBe(first);

    await client.subscriptions.delete("subs", "billing");
    expect(await client.subscriptions.list("subs")).toEqual([]);
    await expect(client.subscriptions.get("subs", "billing")).rejects.toMatchObject({
      status: 404,
      code: "subscription_not_found",
    });
  });

  it("refuses a name already taken with 409 subscription_exists", async () => {
    const { client } = recordingClient();
    await client.subscriptions.create("taken", { name: "pull", mode: "pull" });
    await expect(
      client.subscriptions.create("taken", { name: "pull", mode: "pull" }),
    ).rejects.toMatchObject({ status: 409, code: "subscription_exists" });
  });

  it("pulls from a pull subscription and acks what it pulled", async () => {
    const { client } = recordingClient();
    await client.subscriptions.create("pulled", { name: "jobs", mode: "pull", from: "earliest" });
    const { ids } = await client.publishBatch("pulled", [{ data: "a" }, { data: "b" }]);
    const messages = await client.subscriptions.pull("pulled", "jobs", { max: 10 });
    expect(messages.map((m) => [m.id, m.data, m.attempt])).toEqual([
      [ids[0], "a", 1],
      [ids[1], "b", 1],
    ]);
    expect(await client.subscriptions.ack("pulled", "jobs", ids)).toBe(2);
    expect(await client.subscriptions.get("pulled", "jobs")).toMatchObject({ pending: 0, lag: 0 });
  });
});

describe("delayed messages", () => {
  it("delays a message or a batch, lists them earliest first, and cancels one", async () => {
    const { client } = recordingClient();
    const later = new Date(Date.now() + 7_200_000).toISOString();
    const one = await client.publish("delays", { data: "in an hour", delayMs: 3_600_000 });
    const batch = await client.publishBatch(
      "delays",
      [{ data: "at its time", notBefore: later }, { data: "now", delayMs: 0 }, { data: "batch's" }],
      { delayMs: 1_800_000 },
    );
    expect(await stored("delays")).toEqual([[batch.ids[1], "now"]]);
    const waiting = [];
    for await (const message of client.delayed.list("delays", { pageSize: 1 })) {
      waiting.push([message.id, message.data]);
    }
    expect(waiting).toEqual([
      [batch.ids[2], "batch's"],
      [one.id, "in an hour"],
      [batch.ids[0], "at its time"],
    ]);
    await client.delayed.cancel("delays", one.id);
    const error = await client.delayed.cancel("delays", one.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamhookError);
    expect((error as StreamhookError).code).toBe("delayed_message_not_found");
    const left = [];
    for await (const message of client.delayed.list("delays")) left.push(message.id);
    expect(left).toEqual([batch.ids[2], batch.ids[0]]);
  });
});

describe("history", () => {
  it("reads every message with for await, a page at a time", async () => {
    const { client, answers } = recordingClient();
    const data = Array.from({ length: 25 }, (_, n) => ({ data: { n } }));
    const { ids } = await client.publishBatch("paged", data);
    const read = [];
    for await (const message of client.history("paged", { pageSize: 10 })) read.push(message);
    expect(read.map((m) => [m.id, m.data])).toEqual(ids.map((id, n) => [id, { n }]));
    const pages = answers.filter((a) => a.method === "GET" && a.path.endsWith("/paged/messages"));
    expect(pages.length).toBe(3); // 10, 10, 5
  });

  it("asks for no page it does not read, and starts after a given id", async () => {
    const { client, answers } = recordingClient();
    const { ids } = await client.publishBatch(
      "paged-2",
      Array.from({ length: 30 }, (_, n) => ({ data: n })),
    );
    const read: unknown[] = [];
    for await (const message of client.history("paged-2", { pageSize: 10, after: ids[4] })) {
      read.push(message.data);
      if (read.length === 12) break;
    }
    expect(read).toEqual(Array.from({ length: 12 }, (_, n) => n + 5));
    const pages = answers.filter((a) => a.method === "GET" && a.path.endsWith("/paged-2/messages"));
    expect(pages.length).toBe(2);
  });

  it("throws 404 channel_not_found for a channel that does not exist", async () => {
    const { client } = recordingClient();
    const reading = async () => {
      for await (const _ of client.history("nowhere")) return;
    };
    await expect(reading()).rejects.toMatchObject({ status: 404, code: "channel_not_found" });
  });
});

describe("the attempt log", () => {
  /**
   * Seven one-message requests to a receiver that fails every third: the log's records. One at a
   * time (maxConcurrency 1), so that the third request is the third message's.
   */
  async function sevenRequests(channel: string) {
    const receiver = await startReceiver();
    receiver.respond((req) => (req.n % 3 === 0 ? { status: 500, body: "nope" } : { status: 204 }));
    const { client, answers } = recordingClient();
    await client.subscriptions.create(channel, {
      name: "hook",
      url: receiver.url,
      batchSize: 1,
      maxAttempts: 1,
      maxConcurrency: 1,
    });
    const { ids } = await client.publishBatch(
      channel,
      Array.from({ length: 7 }, (_, n) => ({ data: n })),
    );
    await deliverUntil(stack, channel, () => settled(stack, channel, "hook"), "all sent");
    await receiver.close();
    return { client, answers, ids };
  }

  it("reads a subscription's requests newest first with for await, a page at a time", async () => {
    const { client, answers, ids } = await sevenRequests("logged");
    const read = [];
    for await (const attempt of client.subscriptions.attempts("logged", "hook", { pageSize: 3 })) {
      read.push(attempt);
    }
    // The request for message k failed when k was a multiple of 3.
    expect(read.map((a) => [a.firstId, a.status, a.error, a.body])).toEqual(
      ids
        .map((id, k) => (k % 3 === 2 ? [id, 500, "HTTP 500", "nope"] : [id, 204, null, ""]))
        .reverse(),
    );
    const api = await stack.api("/v1/channels/logged/subscriptions/hook/attempts?limit=1000");
    expect(read).toEqual(((await api.json()) as { attempts: unknown[] }).attempts);
    const pages = answers.filter((a) => a.path.endsWith("/hook/attempts"));
    expect(pages.length).toBe(3); // 3, 3, 1
  });

  it("asks for no page it does not read, and starts after a given record", async () => {
    const { client, answers, ids } = await sevenRequests("logged-2");
    const all = [];
    for await (const attempt of client.subscriptions.attempts("logged-2", "hook"))
      all.push(attempt);
    const read = [];
    const o = { after: all[1]!.id, pageSize: 2 };
    for await (const attempt of client.subscriptions.attempts("logged-2", "hook", o)) {
      read.push(attempt.firstId);
      if (read.length === 3) break;
    }
    expect(read).toEqual([ids[4], ids[3], ids[2]]);
    const pages = answers.filter((a) => a.path.endsWith("/hook/attempts"));
    expect(pages.length).toBe(1 + 2);
  });

  it("throws 404 subscription_not_found for a subscription that does not exist", async () => {
    const { client } = recordingClient();
    await client.publish("logged-3", { data: 1 });
    const reading = async () => {
      for await (const _ of client.subscriptions.attempts("logged-3", "nobody")) return;
    };
    await expect(reading()).rejects.toMatchObject({ status: 404, code: "subscription_not_found" });
  });
});

describe("schedules", () => {
  it("makes, pages through, changes and deletes schedules", async () => {
    const { client, answers } = recordingClient();
    const made = await client.schedules.create({
      name: "client-a",
      channel: "client-reports",
      cron: "0 9 * * 1-5",
      timezone: "Europe/Paris",
      message: { type: "report.due", data: { report: "daily" } },
    });
    expect(made).toMatchObject({ timezone: "Europe/Paris", paused: false, lastRunAt: null });
    for (const name of ["client-b", "client-c"]) {
      await client.schedules.create({
        name,
        channel: "client-reports",
        cron: "@hourly",
        message: { data: 1 },
      });
    }
    const names: string[] = [];
    for await (const schedule of client.schedules.list({ pageSize: 2, after: "client-" })) {
      names.push(schedule.name);
    }
    expect(names).toEqual(["client-a", "client-b", "client-c"]);
    expect(answers.filter((a) => a.method === "GET" && a.path === "/v1/schedules").length).toBe(2);
    expect(await client.schedules.get("client-a")).toEqual(made);

    const paused = await client.schedules.update("client-a", { paused: true });
    expect(paused).toMatchObject({ paused: true, nextRunAt: null });
    await client.schedules.delete("client-a");
    await expect(client.schedules.get("client-a")).rejects.toMatchObject({
      name: "StreamhookError",
      status: 404,
      code: "schedule_not_found",
    });
  });

  it("throws the API's 400 for an expression croner refuses", async () => {
    const { client } = recordingClient();
    const making = client.schedules.create({
      name: "client-bad",
      channel: "client-reports",
      cron: "61 * * * *",
      message: { data: 1 },
    });
    await expect(making).rejects.toMatchObject({ status: 400, code: "invalid_request" });
  });
});

describe("metrics", () => {
  it("returns the Prometheus text the API serves", async () => {
    const { client } = recordingClient();
    await client.publishBatch("measured", [{ data: 1 }, { data: 2 }, { data: 3 }]);
    const text = await client.metrics();
    expect(text).toContain('streamhook_messages_published_total{channel="measured"} 3\n');
    const { samples } = await scrapeMetrics(stack);
    expect(samples.get('streamhook_messages_published_total{channel="measured"}')).toBe(3);
  });

  it("throws 403 for a key without the read scope", async () => {
    const key = await createKey(stack, { name: "publisher-only", scopes: ["publish"] });
    const { client } = recordingClient({ token: key.secret });
    await expect(client.metrics()).rejects.toMatchObject({ status: 403, code: "forbidden" });
  });
});

describe("the generated client", () => {
  it("was generated from the document the Worker serves", async () => {
    const served = await (await fetch(`${stack.url}/openapi.json`)).json();
    expect(served).toEqual(JSON.parse(await readFile(OPENAPI_JSON, "utf8")));
  });
});
