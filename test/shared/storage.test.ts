import { describe, expect, it } from "vitest";
import { channelFull, databaseFull, refusalOf, totals } from "../../shared/storage.ts";

// The words a 507 uses: the channel, and which of Upstash's limits it hit.
describe("a refused publish's message", () => {
  it.each([
    ["ERR max single record size exceeded", /size limit of one Redis key/],
    ["ERR DB capacity quota exceeded", /database is at its capacity/],
    ["OOM command not allowed when used memory > 'maxmemory'.", /database is at its capacity/],
  ])("names the channel and the limit for %s", (refusal, limit) => {
    const error = channelFull("orders", refusal);
    expect(error).toMatchObject({ code: "storage_full", status: 507 });
    expect(error.message).toContain('channel "orders"');
    expect(error.message).toMatch(limit);
    expect(error.message).toContain(refusal);
  });

  it("says the database is full on /health", () => {
    const error = databaseFull("ERR DB capacity quota exceeded");
    expect(error).toMatchObject({ code: "storage_full", status: 507 });
    expect(error.message).toMatch(/^the database is full: .*ERR DB capacity quota exceeded/);
  });

  it.each([
    ["Command failed: ERR DB capacity quota exceeded", "ERR DB capacity quota exceeded"],
    [
      'Command failed: ERR max single record size exceeded, command was: ["evalsha","x"]',
      "ERR max single record size exceeded",
    ],
    ["OOM command not allowed", "OOM command not allowed"],
  ])("keeps Redis' words from %j", (message, words) => {
    expect(refusalOf(new Error(message))).toBe(words);
  });
});

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
