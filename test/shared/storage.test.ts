import { describe, expect, it } from "vitest";
import { totals } from "../../shared/storage.ts";

describe("the totals over channels", () => {
  it("count the channels and add up their messages and sizes", () => {
    expect(totals([])).toEqual({ channels: 0, messages: 0, sizeBytes: 0 });
    expect(
      totals([
        { length: 3, sizeBytes: 1000 },
        { length: 0, sizeBytes: 120 },
      ]),
    ).toEqual({ channels: 2, messages: 3, sizeBytes: 1120 });
  });
});
