import { afterEach, describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import { as, createKey } from "../helpers/keys.ts";
import { labelsOf, scrapeMetrics } from "../helpers/observe.ts";
import { type ReceivedRequest, startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, subscribe } from "../helpers/subscriptions.ts";

// GET /v1/metrics against what the receivers really got: the counters the worker keeps, the
// gauges read at scrape time, and the exposition format Prometheus reads.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("metrics", { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "100" } }, (f) => {
  ({ stack, receiver, channel } = f);
});
const others: TestReceiver[] = [];
afterEach(async () => {
  await Promise.all(others.splice(0).map((r) => r.close()));
});

async function another(): Promise<TestReceiver> {
  const r = await startReceiver();
  others.push(r);
  return r;
}

const at = (sub: string, extra = "") => labelsOf(channel, sub, extra);
const scrape = (client: Pick<Stack, "api"> = stack) => scrapeMetrics(client);

// What a receiver saw, judged as the worker judges it. `late`: its answers were all held past the
// subscription's timeout, so each is a timeout whatever the receiver wrote after (under wrangler's
// test harness the receiver does not see the Worker give up: see test/helpers/receiver.ts).
const timedOut = (late: boolean) => (req: ReceivedRequest) => late || req.senderGone;

/** The receiver's requests by the result the worker should have counted. */
function resultsOf(r: TestReceiver, late = false) {
  const isTimeout = timedOut(late);
  const count = { success: 0, http_4xx: 0, http_5xx: 0, timeout: 0 };
  for (const req of r.requests) {
    if (isTimeout(req)) count.timeout++;
    else if (req.status! >= 500) count.http_5xx++;
    else if (req.status! >= 400) count.http_4xx++;
    else count.success++;
  }
  return count;
}

/** The messages it accepted in time: 2xx, not listed in {"failed"}. */
function deliveredTo(r: TestReceiver, late = false): string[] {
  return r.requests
    .filter((req) => !timedOut(late)(req) && req.status! >= 200 && req.status! < 300)
    .flatMap((req) => {
      const failed = (req.replyBody as { failed?: string[] } | undefined)?.failed ?? [];
      return (req.body?.messages ?? []).map((m) => m.id).filter((id) => !failed.includes(id));
    });
}

describe("GET /v1/metrics", () => {
  it("counts what the receivers got: delivered, attempts by result, dead letters, latency", async () => {
    const flaky = await another();
    const dying = await another();
    const slow = await another();
    await subscribe(stack, channel, { name: "ok", url: receiver.url });
    await subscribe(stack, channel, { name: "flaky", url: flaky.url });
    await subscribe(stack, channel, { name: "dying", url: dying.url, maxAttempts: 2 });
    await subscribe(stack, channel, {
      name: "slow",
      url: slow.url,
      maxAttempts: 1,
      timeoutMs: 200,
    });
    const started = Date.now();
    const ids = await publish(
      stack,
      channel,
      Array.from({ length: 4 }, (_, i) => ({ data: i })),
    );
    // flaky: a 500, then a 2xx rejecting one message, then it takes that one too.
    flaky.respond((req) =>
      req.n === 1
        ? { status: 500 }
        : req.n === 2
          ? { status: 200, body: { failed: [ids[1]] } }
          : { status: 204 },
    );
    dying.respond({ status: 503 });
    slow.respond({ status: 200, delayMs: 600 });
    const subs = ["ok", "flaky", "dying", "slow"];
    await deliverUntil(
      stack,
      channel,
      async () => (await Promise.all(subs.map((s) => settled(stack, channel, s)))).every(Boolean),
      "every subscription settled",
    );
    const elapsedSeconds = (Date.now() - started) / 1000;
    const { samples, typed } = await scrape();

    expect(samples.get(`streamhook_messages_published_total{channel="${channel}"}`)).toBe(4);
    const receivers: Record<string, TestReceiver> = { ok: receiver, flaky, dying, slow };
    for (const [sub, r] of Object.entries(receivers)) {
      const delivered = deliveredTo(r, r === slow).length;
      expect(samples.get(`streamhook_messages_delivered_total${at(sub)}`), sub).toBe(delivered);
      for (const [result, n] of Object.entries(resultsOf(r, r === slow))) {
        const key = `streamhook_delivery_attempts_total${at(sub, `result="${result}"`)}`;
        expect(samples.get(key), `${sub} ${result}`).toBe(n);
      }
      expect(samples.get(`streamhook_delivery_attempts_total${at(sub, 'result="network"')}`)).toBe(
        0,
      );
      const dead = (await (
        await stack.api(`/v1/channels/${channel}/subscriptions/${sub}/dead-letters`)
      ).json()) as { messages: unknown[] };
      expect(samples.get(`streamhook_messages_dead_lettered_total${at(sub)}`), sub).toBe(
        dead.messages.length,
      );
      // The histogram: as many as delivered, cumulative, its sum within the test's time.
      const count = samples.get(`streamhook_delivery_latency_seconds_count${at(sub)}`);
      expect(count, sub).toBe(delivered);
      expect(samples.get(`streamhook_delivery_latency_seconds_bucket${at(sub, 'le="+Inf"')}`)).toBe(
        delivered,
      );
      const buckets = [...samples]
        .filter(([k]) =>
          k.startsWith(`streamhook_delivery_latency_seconds_bucket${at(sub).slice(0, -1)},le=`),
        )
        .map(([, v]) => v);
      expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
      const sum = samples.get(`streamhook_delivery_latency_seconds_sum${at(sub)}`)!;
      expect(sum).toBeGreaterThanOrEqual(0);
      expect(sum).toBeLessThanOrEqual(delivered * elapsedSeconds);
    }
    // What happened, so the comparisons above are not all zeros.
    expect(resultsOf(flaky)).toEqual({ success: 2, http_4xx: 0, http_5xx: 1, timeout: 0 });
    expect(resultsOf(dying)).toEqual({ success: 0, http_4xx: 0, http_5xx: 2, timeout: 0 });
    expect(resultsOf(slow, true)).toEqual({ success: 0, http_4xx: 0, http_5xx: 0, timeout: 1 });
    expect(samples.get(`streamhook_messages_delivered_total${at("flaky")}`)).toBe(4);
    expect(samples.get(`streamhook_messages_dead_lettered_total${at("dying")}`)).toBe(4);
    expect(typed.get("streamhook_delivery_latency_seconds")).toBe("histogram");
    expect(typed.get("streamhook_subscription_lag")).toBe("gauge");
    expect(typed.get("streamhook_messages_delivered_total")).toBe("counter");
  });

  it("shows each subscription's lag and pending as its API view does", async () => {
    await subscribe(stack, channel, { name: "pusher", url: receiver.url });
    await subscribe(stack, channel, { name: "puller", mode: "pull", from: "earliest" });
    await publish(
      stack,
      channel,
      Array.from({ length: 5 }, (_, i) => ({ data: i })),
    );
    const pulled = await stack.post(`/v1/channels/${channel}/subscriptions/puller/pull`, {
      max: 2,
    });
    expect(pulled.status).toBe(200);
    const { samples } = await scrape();
    const view = (await (await stack.api(`/v1/channels/${channel}/subscriptions`)).json()) as {
      subscriptions: { name: string; lag: number; pending: number }[];
    };
    for (const sub of view.subscriptions) {
      expect(samples.get(`streamhook_subscription_lag${at(sub.name)}`), sub.name).toBe(sub.lag);
      expect(samples.get(`streamhook_subscription_pending${at(sub.name)}`), sub.name).toBe(
        sub.pending,
      );
    }
    expect(view.subscriptions.find((s) => s.name === "puller")).toMatchObject({
      lag: 3,
      pending: 2,
    });
    // A pull subscription makes no webhook requests: no delivery counters for it.
    expect(
      samples.has(`streamhook_delivery_attempts_total${at("puller", 'result="success"')}`),
    ).toBe(false);
    expect(
      samples.get(`streamhook_delivery_attempts_total${at("pusher", 'result="success"')}`),
    ).toBe(0);
  });

  it("needs the read scope, and shows only the channels a key may use", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    await publish(stack, "metrics-elsewhere", [{ data: 1 }]);
    const publisher = await createKey(stack, { name: "m-publisher", scopes: ["publish"] });
    const res = await as(stack, publisher.secret).api("/v1/metrics");
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("forbidden");

    const reader = await createKey(stack, {
      name: "m-reader",
      scopes: ["read"],
      channels: [channel],
    });
    const { samples } = await scrape(as(stack, reader.secret));
    const channels = new Set([...samples.keys()].map((k) => /channel="([^"]+)"/.exec(k)?.[1]));
    expect([...channels]).toEqual([channel]);
    expect(samples.get(`streamhook_subscription_pending${at("sub")}`)).toBe(0);
  });
});
