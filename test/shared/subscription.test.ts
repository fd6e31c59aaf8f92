import { describe, expect, it } from "vitest";
import { matchesTypes, parseSubscription } from "../../shared/subscription.ts";
import { startIdFor } from "../../shared/subscriptions.ts";

describe("type filters", () => {
  it.each([
    [null, "anything", true],
    [null, null, true],
    [["order.created"], "order.created", true],
    [["order.created"], "order.created.v2", false],
    [["invoice.*"], "invoice.paid", true],
    [["invoice.*"], "invoice", false],
    [["*.paid"], "invoice.paid", true],
    [["a*c"], "abbbc", true],
    [["order.created", "invoice.*"], "invoice.x", true],
    [["order.created"], null, false],
    [["a.b"], "aXb", false],
  ])("%j on type %j: %j", (types, type, expected) => {
    expect(matchesTypes(types, type)).toBe(expected);
  });
});

describe("where a group starts", () => {
  it.each([
    ["latest", "$"],
    ["earliest", "0"],
    [{ id: "1700000000000-5" }, "1700000000000-4"],
    [{ id: "1700000000000-0" }, "1699999999999-18446744073709551615"],
    [{ id: "0-0" }, "0"],
    [{ time: 1700000000000 }, "1699999999999-18446744073709551615"],
  ] as const)("%j starts after %j, so that point is delivered too", (from, expected) => {
    expect(startIdFor(from)).toBe(expected);
  });
});

describe("a subscription stored before maxRequestsPerSecond existed", () => {
  it("is unlimited", () => {
    const json = JSON.stringify({
      id: "abcdefghijklmnop",
      url: "https://example.com/hook",
      batchSize: 10,
      maxAttempts: 15,
      types: null,
      timeoutMs: 10_000,
      secrets: [],
      createdAt: "2024-01-01T00:00:00.000Z",
    });
    expect(parseSubscription("c", "s", json, false).maxRequestsPerSecond).toBeNull();
  });
});
