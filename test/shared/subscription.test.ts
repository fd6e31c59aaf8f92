import { describe, expect, it } from "vitest";
import {
  matchesTypes,
  parseSubscription,
  serializeSubscription,
} from "../../shared/subscription.ts";
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

// JSON as subscriptions were stored before maxRequestsPerSecond and maxConcurrency existed.
const OLDER_JSON = JSON.stringify({
  id: "abcdefghijklmnop",
  url: "https://example.com/hook",
  batchSize: 10,
  maxAttempts: 15,
  types: null,
  timeoutMs: 10_000,
  secrets: [],
  createdAt: "2024-01-01T00:00:00.000Z",
});

describe("a subscription stored before maxRequestsPerSecond existed", () => {
  it("is unlimited", () => {
    expect(parseSubscription("c", "s", OLDER_JSON, false).maxRequestsPerSecond).toBeNull();
  });
});

describe("a subscription stored before maxConcurrency existed", () => {
  it("reads as 25 requests in flight at once", () => {
    expect(parseSubscription("c", "s", OLDER_JSON, false).maxConcurrency).toBe(25);
  });

  it("keeps a value given later when stored again", () => {
    const sub = { ...parseSubscription("c", "s", OLDER_JSON, false), maxConcurrency: 1 };
    const json = serializeSubscription(sub);
    expect(JSON.parse(json).maxConcurrency).toBe(1);
    expect(parseSubscription("c", "s", json, false).maxConcurrency).toBe(1);
  });
});

describe("a subscription stored before flow keys existed", () => {
  it("has no flow key", () => {
    expect(parseSubscription("c", "s", OLDER_JSON, false).flow).toBeNull();
  });

  it("keeps a flow given later when stored again, and stores nothing without one", () => {
    const older = parseSubscription("c", "s", OLDER_JSON, false);
    expect(JSON.parse(serializeSubscription(older))).not.toHaveProperty("flow");
    const flow = { key: "api.example.com", rate: null, parallelism: 2 };
    const json = serializeSubscription({ ...older, flow });
    expect(parseSubscription("c", "s", json, false).flow).toEqual(flow);
  });
});
