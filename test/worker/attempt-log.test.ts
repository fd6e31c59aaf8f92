import { describe, expect, it } from "vitest";
import {
  ATTEMPT_LOG_LENGTH,
  type AttemptRecord,
  RECORDS_PER_ENTRY,
  recordsEntry,
} from "../../shared/attempt-log.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { Attempt } from "../helpers/observe.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { passWhenRetryDue } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { getSubscription, publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// The attempt log: every webhook request, as GET .../attempts shows it, against what the
// receiver really got and answered.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("attempts", { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "100" } }, (f) => {
  ({ stack, receiver, channel } = f);
});

/** The whole log in pages of `limit`, each page's `next` passed as the next one's `after`. */
async function pagesOf(name: string, limit: number) {
  const pages: Attempt[][] = [];
  let after: string | null = null;
  do {
    const page = await attempts(name, `?limit=${limit}${after ? `&after=${after}` : ""}`);
    pages.push(page.attempts);
    after = page.next;
  } while (after !== null);
  return pages;
}

/** `count` messages to a new subscription "sub", one per request, `maxConcurrency` at a time. */
async function deliverSingles(count: number, maxConcurrency: number) {
  await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1, maxConcurrency });
  const messages = Array.from({ length: count }, (_, i) => ({ data: i }));
  const ids = await publish(stack, channel, messages);
  await runPass(stack);
  expect(receiver.requests).toHaveLength(count);
  return ids;
}

/** The whole log, newest first. */
const allRecords = async (name: string) => (await pagesOf(name, 1000)).flat();

const path = (name: string, query = "") =>
  `/v1/channels/${channel}/subscriptions/${name}/attempts${query}`;

async function attempts(name: string, query = "") {
  const res = await stack.api(path(name, query));
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as { attempts: Attempt[]; next: string | null };
}

describe("the attempt log", () => {
  it("records each request newest first: status, duration, error and the answer's body", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    receiver.respond((req) =>
      req.n === 1 ? { status: 503, body: { error: "db down" } } : { status: 200, body: "thanks" },
    );
    const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }]);
    const before = Date.now();
    await runPass(stack);
    await passWhenRetryDue(stack, channel, "sub");
    expect(receiver.requests.map((r) => r.status)).toEqual([503, 200]);

    const { attempts: log, next } = await attempts("sub");
    expect(next).toBeNull();
    expect(log).toEqual([
      {
        id: expect.stringMatching(/^\d+-\d+$/),
        at: expect.any(String),
        attempt: 2,
        messages: 3,
        firstId: ids[0],
        lastId: ids[2],
        status: 200,
        durationMs: expect.any(Number),
        error: null,
        body: "thanks",
        // The header the request carried: a span of its own per attempt.
        traceparent: receiver.requests[1]!.headers.traceparent,
        held: [],
      },
      {
        id: expect.stringMatching(/^\d+-\d+$/),
        at: expect.any(String),
        attempt: 1,
        messages: 3,
        firstId: ids[0],
        lastId: ids[2],
        status: 503,
        durationMs: expect.any(Number),
        error: "HTTP 503",
        body: '{"error":"db down"}',
        traceparent: receiver.requests[0]!.headers.traceparent,
        held: [],
      },
    ]);
    expect(log[0]!.traceparent).not.toBe(log[1]!.traceparent);
    // Each record's start is the request's: no earlier than the pass, no later than its arrival.
    log.reverse().forEach((a, i) => {
      expect(Date.parse(a.at)).toBeGreaterThanOrEqual(before - 5);
      expect(Date.parse(a.at)).toBeLessThanOrEqual(receiver.requests[i]!.at + 5);
      expect(a.durationMs).toBeGreaterThanOrEqual(0);
    });
    // The failure's answer is in lastError too, after the status.
    const view = await getSubscription(stack, channel, "sub");
    expect(view.lastError).toBe('HTTP 503; response: {"error":"db down"}');
  });

  it("keeps the first 1 KiB of a long answer, and says timeout when none came in time", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, timeoutMs: 300 });
    receiver.respond((req) =>
      req.n === 1 ? { status: 500, body: "x".repeat(5000) } : { status: 200, delayMs: 1000 },
    );
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    await passWhenRetryDue(stack, channel, "sub");
    const [timedOut, long] = (await attempts("sub")).attempts;
    expect(long).toMatchObject({ status: 500, error: "HTTP 500", body: "x".repeat(1024) });
    expect(timedOut).toMatchObject({ status: "timeout", error: "timeout after 300 ms", body: "" });
    expect(timedOut!.durationMs).toBeGreaterThanOrEqual(290);
  });

  it("pages newest first with after and limit, next null on the last page", async () => {
    // One request at a time: the newest request carries the newest message.
    const ids = await deliverSingles(5, 1);
    const pages = await pagesOf("sub", 2);
    expect(pages.map((page) => page.length)).toEqual([2, 2, 1]);
    const seen = pages.flat();
    // Nothing is older than the smallest id.
    expect(await attempts("sub", "?after=0-0")).toEqual({ attempts: [], next: null });
    // One record per request, newest first.
    expect(seen.map((a) => a.firstId)).toEqual([...ids].reverse());
    expect(seen.map((a) => a.id)).toEqual(
      seen
        .map((a) => a.id)
        .sort()
        .reverse(),
    );
  });

  // The log is capped in entries (XADD MAXLEN ~ ATTEMPT_LOG_LENGTH), and an entry holds up to
  // RECORDS_PER_ENTRY records: written together (the isolate's ledger, worker/ledger.ts), the
  // requests of a second are ten to an entry. A log of 1,000 one-record entries (as a log
  // written one request a round trip holds them) then gets 150 requests: still 1,000 to 1,100
  // entries, the newest kept, each once.
  it("keeps about the last 1,000 entries, the newest ones", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 1 });
    const log = stack.keys.attempts(channel, "sub");
    const old = Array.from(
      { length: ATTEMPT_LOG_LENGTH },
      (_, i): AttemptRecord => ({
        at: 1_000 + i,
        attempt: 1,
        messages: 1,
        firstId: `1-${i}`,
        lastId: `1-${i}`,
        status: 204,
        durationMs: 1,
        error: null,
        body: "",
        traceparent: null,
        held: [],
      }),
    );
    const pipe = stack.redis.pipeline();
    for (const r of old) pipe.xadd(log, "*", ...Object.entries(recordsEntry([r])).flat());
    await pipe.exec();
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 150 }, (_, i) => ({ data: i })),
    );
    while ((await runPass(stack)).delivered > 0);
    expect(receiver.requests).toHaveLength(150);
    const length = await stack.redis.xlen(log);
    // MAXLEN ~ trims whole stream nodes (100 entries): at least 1,000, less than 1,100.
    expect(length).toBeGreaterThanOrEqual(ATTEMPT_LOG_LENGTH);
    expect(length).toBeLessThan(ATTEMPT_LOG_LENGTH + 100);
    const kept = await allRecords("sub");
    // The 150 new ones, ten to an entry, and the newest of the old ones.
    expect(kept.length).toBe(150 + length - 150 / RECORDS_PER_ENTRY);
    expect(
      kept
        .slice(0, 150)
        .map((a) => a.firstId)
        .sort(),
    ).toEqual([...ids].sort());
    expect(kept[150]!.firstId).toBe(`1-${ATTEMPT_LOG_LENGTH - 1}`);
    expect(new Set(kept.map((a) => a.firstId)).size).toBe(kept.length);
  }, 90_000);

  it("pages through records written together as it does through records written alone", async () => {
    // Up to 30 requests at a time: a take acks several, and their records are one entry, ten at
    // most.
    const ids = await deliverSingles(90, 30);
    const raw = await stack.redis.xrange(stack.keys.attempts(channel, "sub"), "-", "+");
    const sizes = (raw as [string, string[]][]).map(
      ([, fields]) => fields.filter((f, i) => i % 2 === 0 && /^a\d*$/.test(f)).length,
    );
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(90);
    expect(Math.max(...sizes)).toBeGreaterThan(1);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(RECORDS_PER_ENTRY);
    const whole = await allRecords("sub");
    // Every request once; an entry's later records are <entry id>.<i>.
    expect(whole.map((a) => a.firstId).sort()).toEqual([...ids].sort());
    expect(whole.some((a) => /^\d+-\d+\.\d+$/.test(a.id))).toBe(true);
    // Pages of 3 cut entries anywhere, and give the same records in the same order.
    const pages = await pagesOf("sub", 3);
    expect(Math.max(...pages.map((page) => page.length))).toBe(3);
    const paged = pages.flat();
    expect(paged).toEqual(whole);
    // Newest first: by entry, then by place in the entry.
    const order = whole.map((a) => {
      const [entry, i = "0"] = a.id.split(".");
      const [ms, seq] = entry!.split("-").map(Number);
      return [ms!, seq!, Number(i)];
    });
    const sorted = [...order].sort((x, y) => y[0]! - x[0]! || y[1]! - x[1]! || y[2]! - x[2]!);
    expect(order).toEqual(sorted);
  });

  it("is empty for a pull subscription, which makes no requests", async () => {
    await subscribe(stack, channel, { name: "puller", mode: "pull", from: "earliest" });
    await publish(stack, channel, [{ data: 1 }]);
    expect(await attempts("puller")).toEqual({ attempts: [], next: null });
    expect(await stack.redis.exists(stack.keys.attempts(channel, "puller"))).toBe(0);
  });

  it("is deleted with its subscription and with its channel, and a new one starts empty", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const key = stack.keys.attempts(channel, "sub");
    expect(await stack.redis.xlen(key)).toBe(1);
    expect(
      (await stack.api(`/v1/channels/${channel}/subscriptions/sub`, { method: "DELETE" })).status,
    ).toBe(204);
    expect(await stack.redis.exists(key)).toBe(0);

    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    expect(await attempts("sub")).toEqual({ attempts: [], next: null });
    await publish(stack, channel, [{ data: 2 }]);
    await runPass(stack);
    expect(await stack.redis.xlen(key)).toBe(1);
    const res = await stack.api(`/v1/channels/${channel}?force=true`, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(await stack.redis.exists(key)).toBe(0);
    expect(await stack.redis.exists(stack.keys.metrics(channel))).toBe(0);
  });

  it.each([
    ["a limit of 0", "?limit=0"],
    ["a limit over 1000", "?limit=1001"],
    ["an after that is no stream id", "?after=yesterday"],
    ["an after with no index after its dot", "?after=1-0."],
  ])("answers %s with 400", async (_, query) => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const res = await stack.api(path("sub", query));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("invalid_request");
  });

  it("answers 404 for an unknown subscription or channel", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    for (const url of [path("nobody"), `/v1/channels/no-such-channel/subscriptions/sub/attempts`]) {
      const res = await stack.api(url);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
        "subscription_not_found",
      );
    }
  });
});
