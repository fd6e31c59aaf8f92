import { describe, expect, it } from "vitest";
import { counterFields } from "../../shared/counters.ts";
import {
  createKeys,
  duePrefixes,
  isSubscriptionField,
  lastRunField,
  parseDueMember,
  parseTimerMember,
  pausedField,
  pullField,
  redriveField,
  retryMember,
  scheduleRunKey,
  stateField,
  sweepMember,
  timerMember,
  type Unit,
  wakeMember,
} from "../../shared/keys.ts";

// Renaming a key is a data migration: this test is where that shows.
describe("the Redis key layout", () => {
  const keys = createKeys("sh:v1");

  it("spells every key under the versioned prefix", () => {
    expect(keys.channels()).toBe("sh:v1:channels");
    expect(keys.channel("orders")).toBe("sh:v1:ch:orders");
    expect(keys.subscriptions("orders")).toBe("sh:v1:subs:orders");
    expect(keys.state("orders")).toBe("sh:v1:state:orders");
    expect(keys.due()).toBe("sh:v1:due");
    expect(keys.pace("orders", "billing")).toBe("sh:v1:pace:orders:billing");
    expect(keys.lanes("orders", "billing")).toBe("sh:v1:lanes:orders:billing");
    expect(keys.flow("api.example.com:443")).toBe("sh:v1:flow:api.example.com:443");
    expect(keys.written("01fc31375553b1a2.0")).toBe("sh:v1:written:01fc31375553b1a2.0");
    expect(keys.deadLetters("orders", "billing")).toBe("sh:v1:dlq:orders:billing");
    expect(keys.redrive("orders", "billing")).toBe("sh:v1:redrive:orders:billing");
    expect(keys.attempts("orders", "billing")).toBe("sh:v1:attempts:orders:billing");
    expect(keys.metrics("orders")).toBe("sh:v1:metrics:orders");
    expect(keys.idempotency("orders", "k-1")).toBe("sh:v1:idem:orders:k-1");
    expect(keys.delayed("orders")).toBe("sh:v1:delayed:orders");
    expect(keys.delayedMessages("orders")).toBe("sh:v1:delayed-messages:orders");
    expect(keys.idempotencyPattern("orders")).toBe("sh:v1:idem:orders:*");
    expect(keys.health()).toBe("sh:v1:health");
    expect(keys.apiKeys()).toBe("sh:v1:apikeys");
    expect(keys.schedules()).toBe("sh:v1:schedules");
    expect(keys.rateLimitPrefix()).toBe("sh:v1:ratelimit");
    const unit = { channel: "orders", subscription: "billing" };
    expect(keys.unitStream({ ...unit, kind: "main" })).toBe("sh:v1:ch:orders");
    expect(keys.unitStream({ ...unit, kind: "redrive" })).toBe("sh:v1:redrive:orders:billing");
  });

  it("tells subscriptions from other fields of a channel's subscriptions hash", () => {
    for (const name of ["billing", "a.b_c-1"]) expect(isSubscriptionField(name)).toBe(true);
    for (const field of ["billing#paused", "~retention", ""])
      expect(isSubscriptionField(field)).toBe(false);
  });

  it("spells the schedule's members, the paused marker, the dead-letter counts and the counters", () => {
    const main: Unit = { channel: "orders", subscription: "billing", kind: "main" };
    const redrive: Unit = { ...main, kind: "redrive" };
    expect(wakeMember(main)).toBe("wake:orders/billing");
    expect(retryMember(main)).toBe("retry:orders/billing");
    expect(wakeMember(redrive)).toBe("wake:orders/billing/redrive");
    expect(retryMember(redrive)).toBe("retry:orders/billing/redrive");
    expect(duePrefixes("orders")).toEqual({ wake: "wake:orders/", retry: "retry:orders/" });
    expect(sweepMember("orders")).toBe("sweep:orders");
    expect(timerMember("delay", "orders")).toBe("delay:orders");
    expect(parseTimerMember("delay:orders")).toEqual({ kind: "delay", name: "orders" });
    expect(parseDueMember("delay:orders")).toBeNull();
    expect(pausedField("billing")).toBe("billing#paused");
    expect(pullField("billing")).toBe("billing#pull");
    expect(redriveField("billing")).toBe("billing#redrive");
    expect(stateField("billing", "deadLettersExpired")).toBe("billing:deadLettersExpired");
    expect(stateField("billing", "deadLettersDropped")).toBe("billing:deadLettersDropped");
    expect(counterFields("billing")).toEqual(
      expect.arrayContaining([
        "billing:attempts:success",
        "billing:attempts:http_5xx",
        "billing:latency:0.01",
        "billing:latency:+Inf",
        "billing:latencyMs",
        "billing:deadLettered",
      ]),
    );
  });

  it("reads members back into units and ignores anything else", () => {
    expect(parseDueMember("retry:a.b/c-d/redrive")).toEqual({
      kind: "retry",
      unit: { channel: "a.b", subscription: "c-d", kind: "redrive" },
    });
    expect(parseDueMember("wake:a/b")).toEqual({
      kind: "wake",
      unit: { channel: "a", subscription: "b", kind: "main" },
    });
    for (const junk of ["wake:a", "later:a/b", "wake:a/b/c", "wake:a:x/b"]) {
      expect(parseDueMember(junk)).toBeNull();
    }
  });

  it("spells a schedule's timer member, its last run field and its runs' Idempotency-Key", () => {
    expect(timerMember("schedule", "daily-report")).toBe("schedule:daily-report");
    expect(parseTimerMember("schedule:daily-report")).toEqual({
      kind: "schedule",
      name: "daily-report",
    });
    for (const other of ["wake:a/b", "later:x", "schedule"])
      expect(parseTimerMember(other)).toBeNull();
    expect(lastRunField("daily-report")).toBe("daily-report#lastRun");
    expect(scheduleRunKey("daily-report", 1799999940000)).toBe(
      "schedule:daily-report:1799999940000",
    );
  });

  it("reads a channel's sweep member back as a timer, and no delivery member as one", () => {
    expect(parseTimerMember(sweepMember("a.b-c"))).toEqual({ kind: "sweep", name: "a.b-c" });
    expect(parseDueMember(sweepMember("orders"))).toBeNull();
    for (const member of ["wake:a/b", "retry:a/b/redrive", "sweep:a/b", "later:a"]) {
      expect(parseTimerMember(member)).toBeNull();
    }
  });
});
