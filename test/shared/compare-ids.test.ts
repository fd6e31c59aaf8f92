// compareIds (shared/streams.ts) orders stream ids as decimal texts, without BigInt: checked
// against BigInt's order on generated ids, leading zeros (which the API accepts) included.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareIds } from "../../shared/streams.ts";

const MAX_PART = 2n ** 64n - 1n;

/** BigInt's order, the definition compareIds must match. */
function byBigInt(a: string, b: string): number {
  const [am, as] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split("-").map(BigInt) as [bigint, bigint];
  return am === bm ? (as < bs ? -1 : as > bs ? 1 : 0) : am < bm ? -1 : 1;
}

const part = fc.oneof(
  fc.bigInt({ min: 0n, max: MAX_PART }),
  fc.bigInt({ min: 0n, max: 20n }),
  fc.constantFrom(0n, 9n, 10n, 99n, 100n, MAX_PART),
);
const zeros = fc.nat({ max: 3 }).map((n) => "0".repeat(n));
const id = fc.tuple(zeros, part, zeros, part).map(([za, ms, zb, seq]) => `${za}${ms}-${zb}${seq}`);

describe("compareIds", () => {
  it.each([
    ["1-0", "1-0", 0],
    ["1-0", "1-1", -1],
    ["2-0", "10-0", -1],
    ["10-0", "9-99", 1],
    ["007-1", "7-01", 0],
    ["0-0", "00-000", 0],
    ["18446744073709551615-0", "18446744073709551614-18446744073709551615", 1],
  ])("orders %s and %s as %i", (a, b, order) => {
    expect(compareIds(a, b)).toBe(order);
    expect(compareIds(b, a)).toBe(-order || 0);
  });

  it("orders any two ids as their numbers do", () => {
    fc.assert(
      fc.property(id, id, (a, b) => {
        expect(compareIds(a, b)).toBe(byBigInt(a, b));
      }),
      { numRuns: 2000 },
    );
  });
});
