// The isolate's ledger (worker/ledger.ts, shared/lua/ledger.ts): what runs that only succeeded
// owe, written together: each subscription's counters, its state when the success is the latest
// one, and its records ten to an entry; once however often the write is repeated; nothing for a
// subscription deleted or replaced meanwhile; and `failures` kept when a failure was reported
// after the success (another isolate's run, written at once).

import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { type AttemptRecord, readAttempts, recordsEntry } from "../../shared/attempt-log.ts";
import { metricsField, stateField } from "../../shared/keys.ts";
import { LEDGER_LUA } from "../../shared/lua/ledger.ts";
import type { Db } from "../../shared/redis.ts";
import { sendBatch } from "../../shared/redis.ts";
import type { Subscription } from "../../shared/subscription.ts";
import { noCounts } from "../../worker/attempts.ts";
import {
  LEDGER_FLUSH_MS,
  Ledger,
  ledger,
  ledgerCalls,
  settleSoon,
  writeLedger,
} from "../../worker/ledger.ts";
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
// Loaded through the bridge (which rewrites its shebang, as Upstash reads it), so every write is
// one EVALSHA that runs.
beforeEach(async () => {
  await server.client.flushall();
  await db.redis.scriptLoad(LEDGER_LUA);
});

const record = (i: number): AttemptRecord => ({
  at: 1_000 + i,
  attempt: 1,
  messages: 1,
  firstId: `${500 + i}-0`,
  lastId: `${500 + i}-0`,
  status: 200,
  durationMs: 5,
  error: null,
  body: "",
  traceparent: null,
  held: [],
});

/** A stored subscription (its JSON carries its id) and its log, as subscribe makes them. */
async function stored(channel: string, name: string, id: string): Promise<Subscription> {
  const sub = { channel, name, id } as Subscription;
  await server.client.hset(db.keys.subscriptions(channel), name, JSON.stringify({ id }));
  await server.client.xadd(db.keys.attempts(channel, name), "*", "created", "1");
  return sub;
}

const success = (n: number) => ({
  ...noCounts(),
  attempts: { success: n },
  latency: { 0: n },
  latencyMs: n * 3,
});

/** Records per entry of a log, oldest entry first (the entry subscribe made left out). */
async function entrySizes(channel: string, name: string) {
  const entries = (await server.client.xrange(db.keys.attempts(channel, name), "-", "+")) as [
    string,
    string[],
  ][];
  return entries
    .map(([, f]) => f.filter((field, i) => i % 2 === 0 && /^a\d*$/.test(field)).length)
    .filter((n) => n > 0);
}

const write = (ledger: Ledger) => sendBatch(db.redis, ledgerCalls(db, ledger.takeAll()));

it("writes every subscription's counters, state and records in one script, and a repeat writes nothing", async () => {
  const a = await stored("ch", "a", "id-a");
  const b = await stored("ch", "b", "id-b");
  const ledger = new Ledger();
  // Three runs of a, one of b, over the second.
  for (let run = 0; run < 3; run++) {
    const records = Array.from({ length: 9 }, (_, i) => record(run * 9 + i));
    ledger.owe(a, 1_000 + run, {
      records,
      counts: success(9),
      success: { at: 2_000 + run, lastAckedId: `${run}-0` },
    });
  }
  ledger.owe(b, 1_001, {
    records: [record(100)],
    counts: success(1),
    success: { at: 1_500, lastAckedId: "9-9" },
  });
  const owing = ledger.takeAll();
  const calls = ledgerCalls(db, owing);
  expect(calls).toHaveLength(1);
  const counted = await countCommands(server.client, async () => {
    await sendBatch(db.redis, calls);
  });
  expect(counted.byCommand).toEqual({
    evalsha: 1,
    get: 1,
    set: 1,
    // The channel's subscriptions (still the ones delivered to?) and their state.
    hmget: 2,
    // Per subscription: success, one latency bucket, the latency sum; its state; its records.
    hincrby: 6,
    hset: 2,
    xadd: 3 + 1,
  });
  const metrics = await server.client.hgetall(db.keys.metrics("ch"));
  expect(metrics).toMatchObject({
    [metricsField("a", "attempts:success")]: "27",
    [metricsField("a", "latencyMs")]: "81",
    [metricsField("b", "attempts:success")]: "1",
  });
  const state = await server.client.hgetall(db.keys.state("ch"));
  expect(state).toMatchObject({
    [stateField("a", "lastSuccessAt")]: "2002",
    [stateField("a", "lastAckedId")]: "2-0",
    [stateField("a", "failures")]: "0",
    [stateField("b", "lastSuccessAt")]: "1500",
  });
  expect(await entrySizes("ch", "a")).toEqual([10, 10, 7]);
  const { attempts } = await readAttempts(db, "ch", "a", { limit: 1000 });
  expect(attempts.map((r) => r.firstId)).toEqual(
    Array.from({ length: 27 }, (_, i) => `${500 + 26 - i}-0`),
  );
  // The same write again (a lost reply's repeat): its mark, and nothing more.
  const again = await countCommands(server.client, async () => {
    await sendBatch(db.redis, calls);
  });
  expect(again.byCommand).toEqual({ evalsha: 1, get: 1 });
  expect(
    await server.client.hget(db.keys.metrics("ch"), metricsField("a", "attempts:success")),
  ).toBe("27");
  expect(await entrySizes("ch", "a")).toEqual([10, 10, 7]);
});

it("writes nothing for a subscription deleted, or replaced by one of the same name, meanwhile", async () => {
  const gone = { channel: "ch", name: "gone", id: "id-gone" } as Subscription;
  const old = { channel: "ch", name: "again", id: "id-old" } as Subscription;
  await stored("ch", "again", "id-new");
  const ledger = new Ledger();
  for (const sub of [gone, old]) {
    ledger.owe(sub, 1_000, {
      records: [record(1)],
      counts: success(1),
      success: { at: 2_000, lastAckedId: "1-0" },
    });
  }
  await write(ledger);
  expect(await server.client.exists(db.keys.metrics("ch"), db.keys.state("ch"))).toBe(0);
  expect(await server.client.exists(db.keys.attempts("ch", "gone"))).toBe(0);
  expect(await entrySizes("ch", "again")).toEqual([]);
});

it("keeps failures when a failure was reported after the success, and an older success changes no state", async () => {
  const sub = await stored("ch", "s", "id-s");
  // Another isolate's run failed at 3,000 and wrote at once: failures 2 since.
  await server.client.hset(db.keys.state("ch"), {
    [stateField("s", "failures")]: "2",
    [stateField("s", "lastErrorAt")]: "3000",
    [stateField("s", "lastSuccessAt")]: "1000",
  });
  const ledger = new Ledger();
  ledger.owe(sub, 2_000, { counts: success(1), success: { at: 2_500, lastAckedId: "5-0" } });
  await write(ledger);
  expect(await server.client.hgetall(db.keys.state("ch"))).toMatchObject({
    [stateField("s", "failures")]: "2",
    [stateField("s", "lastSuccessAt")]: "2500",
    [stateField("s", "lastAckedId")]: "5-0",
  });
  // A success older than the one stored: counted, the state left as it is.
  ledger.owe(sub, 2_000, { counts: success(1), success: { at: 2_200, lastAckedId: "4-0" } });
  await write(ledger);
  expect(await server.client.hget(db.keys.state("ch"), stateField("s", "lastAckedId"))).toBe("5-0");
  expect(
    await server.client.hget(db.keys.metrics("ch"), metricsField("s", "attempts:success")),
  ).toBe("2");
  // A later success after the failure: failures back to 0.
  ledger.owe(sub, 4_000, { counts: success(1), success: { at: 4_000, lastAckedId: "6-0" } });
  await write(ledger);
  expect(await server.client.hget(db.keys.state("ch"), stateField("s", "failures"))).toBe("0");
});

it("is due once its oldest is a second old or it holds 200 records, and keeps a refused write for the next", async () => {
  const sub = await stored("ch", "s", "id-s");
  const ledger = new Ledger();
  // A run that sent nothing owes nothing.
  ledger.owe(sub, 10_000, { records: [], counts: noCounts(), success: null });
  expect(ledger.empty).toBe(true);
  ledger.owe(sub, 10_000, { records: [record(1)] });
  expect(ledger.due(10_999)).toBe(false);
  expect(ledger.due(11_000)).toBe(true);
  ledger.owe(sub, 10_500, { records: Array.from({ length: 199 }, (_, i) => record(i + 2)) });
  expect(ledger.due(10_001)).toBe(true);
  // Taken by a write that did not run: put back, before what was owed since.
  const taken = ledger.takeAll();
  expect(ledger.empty).toBe(true);
  ledger.owe(sub, 12_000, { records: [record(300)], counts: success(1) });
  ledger.restore(taken);
  const [owing] = ledger.takeAll();
  expect(owing!.records.map((r) => r.firstId)).toEqual([
    ...Array.from({ length: 200 }, (_, i) => `${501 + i}-0`),
    "800-0",
  ]);
  expect(owing!.since).toBe(10_000);
  expect(owing!.counts.get(metricsField("s", "attempts:success"))).toBe(1);
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

// A kick at its end (worker/entry.ts), with the clock and the sleep passed in.
it("a kick writes the ledger once it is due; before that one kick watches, and writes what nobody else did", async () => {
  const sub = await stored("ch", "s", "id-s");
  let now = 100_000;
  const waits: number[] = [];
  const sleep = async (ms: number) => {
    waits.push(ms);
    now += ms;
  };
  const clock = () => now;
  const successes = async () =>
    Number(await server.client.hget(db.keys.metrics("ch"), metricsField("s", "attempts:success")));

  // Due (a second old): written at once, no wait.
  ledger.owe(sub, now - LEDGER_FLUSH_MS, { counts: success(1) });
  await settleSoon(db, clock, sleep);
  expect(waits).toEqual([]);
  expect(await successes()).toBe(1);

  // Not due: this kick watches until a quarter second past due, and writes it.
  ledger.owe(sub, now, { counts: success(2) });
  await settleSoon(db, clock, sleep);
  expect(waits).toEqual([LEDGER_FLUSH_MS + 250]);
  expect(await successes()).toBe(3);
  expect(ledger.empty).toBe(true);

  // Another invocation writes it while this one watches: the watcher writes nothing more.
  waits.length = 0;
  ledger.owe(sub, now, { counts: success(4) });
  let release = () => {};
  const watched = settleSoon(db, clock, () => new Promise<void>((r) => (release = r)));
  // A second kick meanwhile, not due: leaves it to the watcher.
  await settleSoon(db, clock, sleep);
  expect(waits).toEqual([]);
  expect(await successes()).toBe(3);
  await writeLedger(db);
  now += LEDGER_FLUSH_MS + 250;
  release();
  await watched;
  expect(await successes()).toBe(7);
});

it("a watcher whose write Redis refuses keeps it for the next invocation and stops, not trying again at once", async () => {
  const sub = await stored("ch", "s", "id-s");
  let now = 200_000;
  let sleeps = 0;
  const sleep = async (ms: number) => {
    sleeps++;
    now += ms;
  };
  ledger.owe(sub, now, { counts: success(1) });
  stack!.bridge.faults.add({ kind: "unavailable", match: () => true });
  try {
    await settleSoon(db, () => now, sleep);
  } finally {
    stack!.bridge.faults.clear();
  }
  // One wait, one refused write: kept, and the watcher gone.
  expect(sleeps).toBe(1);
  expect(ledger.empty).toBe(false);
  await writeLedger(db);
  expect(
    await server.client.hget(db.keys.metrics("ch"), metricsField("s", "attempts:success")),
  ).toBe("1");
});
