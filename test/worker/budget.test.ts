import { describe, expect, it } from "vitest";
import { loadConfig } from "../../shared/config.ts";
import { Budget, VISIT_RESERVE } from "../../worker/budget.ts";
import { LEASE_MARGIN_MS, LEASE_RENEW_MS, Lease, leaseMs } from "../../worker/lease.ts";

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
  const renewals: number[] = [];
  const renew = async () => {
    renewals.push(1);
    return true;
  };

  it("lasts one batch's timeout, plus a margin, plus a renewal window", () => {
    expect(leaseMs(2_000)).toBe(2_000 + LEASE_MARGIN_MS + LEASE_RENEW_MS);
  });

  it("covers a batch only while the batch surely ends before it does", () => {
    const lease = new Lease("t", 0, 10_000 + LEASE_MARGIN_MS, renew);
    expect(lease.covers(0, 10_000)).toBe(true);
    expect(lease.covers(1, 10_000)).toBe(false);
  });

  it("is renewed before a batch it would not outlive, and only then", async () => {
    renewals.length = 0;
    const lease = new Lease("t", 0, leaseMs(1_000), renew);
    expect(await lease.hold(LEASE_RENEW_MS, 1_000)).toBe(true);
    expect(renewals).toHaveLength(0);
    expect(await lease.hold(LEASE_RENEW_MS + 1, 1_000)).toBe(true);
    expect(renewals).toHaveLength(1);
    // Renewed at that time: it covers a full window again.
    expect(lease.covers(2 * LEASE_RENEW_MS + 1, 1_000)).toBe(true);
  });

  it("holds no batch once the renewal finds another deliverer's token", async () => {
    const lease = new Lease("t", 0, leaseMs(1_000), async () => false);
    expect(await lease.hold(LEASE_RENEW_MS + 1, 1_000)).toBe(false);
  });
});
