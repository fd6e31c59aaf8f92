import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { Budget, VISIT_RESERVE } from "../../worker/budget.ts";
import { LEASE_MARGIN_MS, Lease, leaseMs } from "../../worker/lease.ts";

const config = (vars: Record<string, string>) =>
  loadConfig({
    UPSTASH_REDIS_REST_URL: "https://example.upstash.io",
    UPSTASH_REDIS_REST_TOKEN: "t",
    API_TOKEN: "a",
    ...vars,
  });

describe("a pass's budget", () => {
  it("starts no batch after its deadline", () => {
    const budget = new Budget(config({ PASS_BUDGET_MS: "1000" }), 5_000);
    expect(budget.allowsBatch(5_999)).toBe(true);
    expect(budget.allowsBatch(6_000)).toBe(false);
  });

  it("starts no batch that could pass the subrequest cap", () => {
    const budget = new Budget(config({ PASS_MAX_SUBREQUESTS: "10" }), 0);
    budget.spend(7);
    expect(budget.allowsBatch(1)).toBe(true);
    budget.spend(1);
    expect(budget.allowsBatch(1)).toBe(false);
  });

  it("starts no visit that could not end cleanly, keeping back what running visits need", () => {
    const budget = new Budget(config({ PASS_MAX_SUBREQUESTS: "10" }), 0);
    // Each visit needs 3 to start and keeps back VISIT_RESERVE (2) for its end: three fit in 10.
    expect([1, 2, 3].map(() => budget.startVisit(1))).toEqual([true, true, true]);
    expect(budget.startVisit(1)).toBe(false);
    budget.endVisit();
    expect(budget.startVisit(1)).toBe(true);
    expect(VISIT_RESERVE).toBe(2);
  });

  it("starts no visit after its deadline", () => {
    const budget = new Budget(config({ PASS_BUDGET_MS: "1000" }), 0);
    expect(budget.startVisit(1_000)).toBe(false);
  });
});

describe("a visit's lease", () => {
  it("lasts to the deadline, plus the timeout of a batch started just before it, plus a margin", () => {
    expect(leaseMs(10_000, 4_000, 2_000)).toBe(6_000 + 2_000 + LEASE_MARGIN_MS);
  });

  it("covers a batch only while the batch surely ends before it does", () => {
    const lease = new Lease("t", 0, 10_000 + LEASE_MARGIN_MS);
    expect(lease.covers(0, 10_000)).toBe(true);
    expect(lease.covers(1, 10_000)).toBe(false);
  });
});
