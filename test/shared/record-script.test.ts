// The attempt log's records after a lost reply (shared/lua/record.ts, worker/report.ts
// recordAgain): the records a lost round trip carried are appended once, ten to an entry as the
// worker writes them, and none twice, whatever the log already holds.

import { afterAll, beforeAll, expect, it } from "vitest";
import { type AttemptRecord, readAttempts, recordsEntry } from "../../shared/attempt-log.ts";
import type { Db } from "../../shared/redis.ts";
import type { Subscription } from "../../shared/subscription.ts";
import { recordAgain } from "../../worker/report.ts";
import { type BridgedDb, startBridgedDb } from "../helpers/bridged-db.ts";
import { countCommands, type RedisServer } from "../helpers/redis-server.ts";

let server: RedisServer;
let db: Db;
let stack: BridgedDb | undefined;
beforeAll(async () => {
  stack = await startBridgedDb();
  ({ server, db } = stack);
});
afterAll(() => stack?.stop());

const record = (i: number): AttemptRecord => ({
  at: 1_000 + i,
  attempt: 1,
  messages: 1,
  firstId: `${500 + i}-0`,
  lastId: `${500 + i}-0`,
  status: i % 3 === 0 ? 503 : 200,
  durationMs: 5,
  error: i % 3 === 0 ? "HTTP 503" : null,
  body: i % 3 === 0 ? "busy" : "",
  traceparent: null,
  held: [],
});

/** Records per entry of the log, oldest entry first. */
async function entrySizes(key: string) {
  const entries = (await server.client.xrange(key, "-", "+")) as [string, string[]][];
  return entries.map(([, f]) => f.filter((name, i) => i % 2 === 0 && /^a\d*$/.test(name)).length);
}

it("appends what a lost round trip carried once, ten records to an entry, and nothing on a repeat", async () => {
  const sub = { channel: "rec", name: "sub" } as Subscription;
  const key = db.keys.attempts(sub.channel, sub.name);
  // The log as subscribe makes it, and the first 4 records: the round trip ran before its reply
  // was lost (the worker's XADD), so they are there already.
  await server.client.xadd(
    key,
    "*",
    ...Object.entries(recordsEntry([0, 1, 2, 3].map(record))).flat(),
  );
  const carried = Array.from({ length: 27 }, (_, i) => record(i));
  await recordAgain(db, sub, carried);
  expect(await entrySizes(key)).toEqual([4, 10, 10, 3]);
  await recordAgain(db, sub, carried);
  expect(await entrySizes(key)).toEqual([4, 10, 10, 3]);
  // Read back newest first, each once, as they were made.
  const { attempts, next } = await readAttempts(db, sub.channel, sub.name, { limit: 1000 });
  expect(next).toBeNull();
  expect(attempts.map((a) => a.firstId)).toEqual(carried.map((r) => r.firstId).reverse());
  expect(attempts.find((a) => a.firstId === "500-0")).toMatchObject({
    status: 503,
    error: "HTTP 503",
    body: "busy",
  });
});

it("does not make the log of a subscription deleted meanwhile", async () => {
  const sub = { channel: "rec", name: "gone" } as Subscription;
  await recordAgain(db, sub, [record(1)]);
  expect(await server.client.exists(db.keys.attempts(sub.channel, sub.name))).toBe(0);
});

it("reads a page in 1 XREVRANGE from a log of full entries, and 2 from one of single records", async () => {
  const key = (name: string) => db.keys.attempts("read", name);
  for (let i = 0; i < 60; i++) {
    await server.client.xadd(
      key("singles"),
      "*",
      ...Object.entries(recordsEntry([record(i)])).flat(),
    );
  }
  for (let i = 0; i < 60; i += 10) {
    const ten = Array.from({ length: 10 }, (_, k) => record(i + k));
    await server.client.xadd(key("full"), "*", ...Object.entries(recordsEntry(ten)).flat());
  }
  for (const [name, reads] of [
    ["full", 1],
    ["singles", 2],
  ] as const) {
    let page: Awaited<ReturnType<typeof readAttempts>> | undefined;
    const counted = await countCommands(server.client, async () => {
      page = await readAttempts(db, "read", name, { limit: 40 });
    });
    expect(counted.byCommand, name).toEqual({ xrevrange: reads });
    expect(page!.attempts.map((a) => a.firstId)).toEqual(
      Array.from({ length: 40 }, (_, i) => `${500 + 59 - i}-0`),
    );
    expect(page!.next).toBe(page!.attempts.at(-1)!.id);
  }
});
