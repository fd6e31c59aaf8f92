import { describe, expect, it } from "vitest";
import { bucketOf, LATENCY_LE, resultOf } from "../../shared/counters.ts";
import { exposition } from "../../shared/exposition.ts";

describe("a request's result", () => {
  it.each([
    [200, true, "success"],
    [204, true, "success"],
    [200, false, "http_3xx"],
    [303, false, "http_3xx"],
    [404, false, "http_4xx"],
    [410, false, "http_4xx"],
    [429, false, "http_4xx"],
    [500, false, "http_5xx"],
    [503, false, "http_5xx"],
    ["timeout", false, "timeout"],
    ["network", false, "network"],
  ] as const)("%s (accepted: %s) is %s", (status, accepted, result) => {
    expect(resultOf(status, accepted)).toBe(result);
  });
});

describe("a latency's bucket", () => {
  it.each([
    [-5, "0.01"],
    [0, "0.01"],
    [10, "0.01"],
    [11, "0.025"],
    [1000, "1"],
    [1001, "2.5"],
    [86_400_000, "86400"],
    [86_400_001, "+Inf"],
  ])("%s ms falls in le=%s", (ms, le) => {
    expect(LATENCY_LE[bucketOf(ms)]).toBe(le);
  });
});

describe("the exposition", () => {
  it("writes each family once with HELP and TYPE, buckets cumulative, sum in seconds", () => {
    const text = exposition([
      {
        name: "orders",
        published: 7,
        subscriptions: [
          {
            name: "billing",
            push: true,
            lag: 2,
            pending: 1,
            counters: {
              "attempts:success": 3,
              "attempts:http_5xx": 1,
              "latency:0.01": 2,
              "latency:1": 1,
              "latency:+Inf": 1,
              latencyMs: 90_512,
              deadLettered: 1,
            },
          },
          { name: "puller", push: false, lag: null, pending: 0, counters: {} },
        ],
      },
    ]);
    const lines = text.split("\n");
    const at = 'channel="orders",subscription="billing"';
    expect(lines).toEqual(
      expect.arrayContaining([
        "# TYPE streamhook_messages_published_total counter",
        'streamhook_messages_published_total{channel="orders"} 7',
        `streamhook_messages_delivered_total{${at}} 4`,
        `streamhook_delivery_attempts_total{${at},result="success"} 3`,
        `streamhook_delivery_attempts_total{${at},result="http_5xx"} 1`,
        `streamhook_delivery_attempts_total{${at},result="timeout"} 0`,
        `streamhook_messages_dead_lettered_total{${at}} 1`,
        `streamhook_subscription_lag{${at}} 2`,
        `streamhook_subscription_pending{${at}} 1`,
        "# TYPE streamhook_delivery_latency_seconds histogram",
        `streamhook_delivery_latency_seconds_bucket{${at},le="0.01"} 2`,
        `streamhook_delivery_latency_seconds_bucket{${at},le="0.5"} 2`,
        `streamhook_delivery_latency_seconds_bucket{${at},le="1"} 3`,
        `streamhook_delivery_latency_seconds_bucket{${at},le="86400"} 3`,
        `streamhook_delivery_latency_seconds_bucket{${at},le="+Inf"} 4`,
        `streamhook_delivery_latency_seconds_sum{${at}} 90.512`,
        `streamhook_delivery_latency_seconds_count{${at}} 4`,
        'streamhook_subscription_pending{channel="orders",subscription="puller"} 0',
      ]),
    );
    // A pull subscription has no delivery counters, and a lag Redis cannot count is left out.
    expect(text).not.toMatch(/attempts_total\{[^}]*puller/);
    expect(text).not.toMatch(/lag\{[^}]*puller/);
    const types = lines.filter((l) => l.startsWith("# TYPE "));
    expect(types).toHaveLength(7);
    expect(new Set(types).size).toBe(7);
    expect(text.endsWith("\n")).toBe(true);
  });

  it("still writes every family's HELP and TYPE with no channel at all", () => {
    const text = exposition([]);
    expect(text.match(/^# TYPE /gm)).toHaveLength(7);
    expect(text.match(/^# HELP /gm)).toHaveLength(7);
  });
});
