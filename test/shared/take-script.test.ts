// The take script (shared/lua/take.ts, with the encoding of shared/lua/encode.ts) writes each
// message's JSON text itself, in Redis' Lua: its publishedAt from integer date arithmetic, its type
// quoted by hand, and it applies the types filter with Lua patterns. Checked here against
// JavaScript (toISOString, JSON, and the glob matching of subscription.ts: matchesTypes) on
// generated messages, taken through the engine's `take` and the bridge, as the Worker runs it.

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { channelQueue, WAITING_ROOM } from "../../shared/engine/queue.ts";
import { type TakeRequest, take } from "../../shared/engine/take.ts";
import type { Db } from "../../shared/redis.ts";
import { matchesTypes } from "../../shared/subscription.ts";
import { derivedTrace, traceSeed } from "../../shared/trace.ts";
import { type BridgedDb, startBridgedDb } from "../helpers/bridged-db.ts";
import type { RedisServer } from "../helpers/redis-server.ts";

/** The latest instant JavaScript's Date holds: +275760-09-13T00:00:00.000Z. */
const MAX_DATE_MS = 8.64e15;

let server: RedisServer;
let db: Db;
let channels = 0;
let stack: BridgedDb | undefined;

beforeAll(async () => {
  stack = await startBridgedDb();
  ({ server, db } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

interface Entry {
  ms: number;
  fields: Record<string, string>;
}

/**
 * A fresh channel holding `entries` (ids `<ms>-1`), and the queue of a subscription whose group
 * has read none of them.
 */
async function queueOf(entries: Entry[], schedule?: { retry: string; wake: string }) {
  const sub = {
    channel: `take-script-${channels++}`,
    name: "sub",
    group: "g",
    mode: "pull" as const,
  };
  const q = channelQueue(db, sub, schedule);
  for (const { ms, fields } of entries) {
    await server.client.xadd(q.stream, `${ms}-1`, ...Object.entries(fields).flat());
  }
  await server.client.xgroup("CREATE", q.stream, q.group, "0");
  return q;
}

/** One take by reader "c" of every entry: nothing acked, nothing capped, the given options. */
const takeAll = (q: Awaited<ReturnType<typeof queueOf>>, options: Partial<TakeRequest> = {}) =>
  take(db.redis, db, q, {
    reader: "c",
    now: 1_000,
    count: 1_000,
    visibilityMs: 30_000,
    byteBudget: 8 * 1024 * 1024,
    ...options,
  });

const ascending = (values: number[]) => [...values].sort((a, b) => a - b);
const utf8Bytes = (text: string) => new TextEncoder().encode(text).byteLength;

describe("the take script's messages", () => {
  it("writes each message as JSON, dated as toISOString would, named as pull or push asks", async () => {
    const message = fc.record({
      type: fc.option(fc.string({ unit: "grapheme", maxLength: 12 }), { nil: undefined }),
      data: fc.json({ maxDepth: 2 }),
      redrivenFrom: fc.option(fc.integer({ min: 0, max: MAX_DATE_MS }), { nil: undefined }),
      // The publish's trace context (lua/publish.ts): a tracestate value may hold `"` and `\`.
      traceparent: fc.option(fc.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/), {
        nil: undefined,
      }),
      tracestate: fc.option(fc.stringMatching(/^[a-z]{1,8}=[\x21-\x2b\x2d-\x3c\x3e-\x7e]{1,20}$/), {
        nil: undefined,
      }),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(
          fc.oneof(
            fc.integer({ min: 0, max: MAX_DATE_MS }),
            fc.integer({ min: 1.5e12, max: 2.5e12 }), // around now
            fc.constantFrom(951_782_400_000, 253_402_300_799_999, 253_402_300_800_000), // 2000-02-29, years 9999 and 10000
          ),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(message, { minLength: 8, maxLength: 8 }),
        // Pull names a message by its entry id (and says where a redriven one came from); push by
        // the original's id.
        fc.boolean(),
        async (times, shapes, ownIds) => {
          const entries = ascending(times).map((ms, i) => {
            const { type, data, redrivenFrom, traceparent, tracestate } = shapes[i]!;
            const fields: Record<string, string> = { d: data };
            if (type !== undefined) fields.t = type;
            if (redrivenFrom !== undefined) fields.o = `${redrivenFrom}-7`;
            if (traceparent !== undefined) fields.p = traceparent;
            if (traceparent !== undefined && tracestate !== undefined) fields.s = tracestate;
            return { ms, fields };
          });
          const queue = await queueOf(entries);
          const { taken } = await takeAll(queue, { ownIds });
          // A message stored without a trace gets the one derived from its (original) id, the
          // same text here as in the Worker (history, dead letters).
          const seed = traceSeed(queue.channel);
          const traceOf = (ms: number, fields: Record<string, string>) =>
            fields.p ?? derivedTrace(seed, fields.o ?? `${ms}-1`);
          expect(taken.map((t) => JSON.parse(t.text))).toEqual(
            entries.map(({ ms, fields }) => ({
              id: ownIds ? `${ms}-1` : (fields.o ?? `${ms}-1`),
              type: fields.t ?? null,
              data: JSON.parse(fields.d!),
              publishedAt: new Date(fields.o ? Number(fields.o.split("-")[0]) : ms).toISOString(),
              attempt: 1,
              ...(fields.o && ownIds ? { redrivenFrom: fields.o } : {}),
              traceparent: traceOf(ms, fields),
              ...(fields.s ? { tracestate: fields.s } : {}),
            })),
          );
          // Joined (as a pull asks): the same texts, in order, as one text; no message list.
          await server.client.xgroup("CREATE", queue.stream, "joined", "0");
          const joined = await takeAll({ ...queue, group: "joined" }, { ownIds, joined: true });
          expect(joined.joined).toEqual({
            count: entries.length,
            text: taken.map((t) => t.text).join(","),
          });
          expect(joined.taken).toEqual([]);
          expect(taken).toEqual(
            entries.map(({ ms, fields }) => ({
              entryId: `${ms}-1`,
              messageId: ownIds ? `${ms}-1` : (fields.o ?? `${ms}-1`),
              attempt: 1,
              text: expect.any(String),
              bytes: Object.values(fields).reduce((sum, value) => sum + utf8Bytes(value), 0),
              trace: { traceparent: traceOf(ms, fields), tracestate: fields.s },
              orderingKey: null,
            })),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("keeps exactly the types matchesTypes keeps, and acks the others", async () => {
    // Small alphabets, so that patterns match often; "." and "-" are magic in Lua patterns.
    const type = fc.option(fc.stringMatching(/^[ab.-]{1,5}$/), { nil: undefined });
    const pattern = fc.stringMatching(/^[ab.*-]{1,4}$/);
    await fc.assert(
      fc.asyncProperty(
        fc.array(type, { minLength: 1, maxLength: 10 }),
        fc.array(pattern, { minLength: 1, maxLength: 3 }),
        async (types, patterns) => {
          const entries = types.map(
            (t, i): Entry => ({
              ms: 1_000 + i,
              fields: t === undefined ? { d: "1" } : { d: "1", t },
            }),
          );
          const q = await queueOf(entries);
          const result = await takeAll(q, { types: patterns });
          const wanted = entries.filter((e) => matchesTypes(patterns, e.fields.t ?? null));
          expect(result.taken.map((t) => t.entryId)).toEqual(wanted.map((e) => `${e.ms}-1`));
          expect(result.filtered).toBe(entries.length - wanted.length);
          // Only what was taken stays pending: the others were acked by the take.
          const pending = (await server.client.xpending(q.stream, q.group)) as [
            number,
            ...unknown[],
          ];
          expect(Number(pending[0])).toBe(wanted.length);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe("a push reader (its nacks wait in the waiting room)", () => {
  const entries = (n: number): Entry[] =>
    Array.from({ length: n }, (_, i) => ({ ms: 1_000 + i, fields: { d: String(i) } }));
  const push = { holder: WAITING_ROOM, visibilityMs: 30_000, count: 10 };
  /** The entry's idle time set as if it was taken `ms` ago (Redis' clock, passed in). */
  const age = (q: Awaited<ReturnType<typeof queueOf>>, owner: string, id: string, ms: number) =>
    server.client.xclaim(q.stream, q.group, owner, 0, id, "IDLE", ms, "JUSTID");

  it("holds what it took until its visibility timeout, counted from the read, then loses it", async () => {
    const q = await queueOf(entries(2));
    const first = await takeAll(q, { ...push, reader: "a" });
    expect(first.taken.map((t) => t.attempt)).toEqual([1, 1]);
    // Nothing leased: the read's own delivery time stands (no XCLAIM).
    const look = { ...push, reader: "b", look: true };
    expect((await takeAll(q, look)).taken).toEqual([]);
    await age(q, "a", "1000-1", 29_000);
    expect((await takeAll(q, look)).taken).toEqual([]);
    await age(q, "a", "1000-1", 30_000);
    const second = await takeAll(q, look);
    expect(second.taken.map((t) => [t.entryId, t.attempt])).toEqual([["1000-1", 2]]);
  });

  it("keeps a nacked entry in the waiting room for its delay, whatever its idle time says of readers", async () => {
    const q = await queueOf(entries(1));
    await takeAll(q, { ...push, reader: "a" });
    await takeAll(q, {
      ...push,
      reader: "a",
      count: 0,
      nack: [{ ids: ["1000-1"], visibleInMs: 60_000 }],
    });
    // Idle past the readers' visibility, not past the waiting room's delay.
    await age(q, WAITING_ROOM, "1000-1", 86_400_000 - 60_000 + 31_000);
    expect((await takeAll(q, { ...push, reader: "b", look: true })).taken).toEqual([]);
    await age(q, WAITING_ROOM, "1000-1", 86_400_000);
    const due = await takeAll(q, { ...push, reader: "b", look: true });
    expect(due.taken.map((t) => [t.entryId, t.attempt])).toEqual([["1000-1", 2]]);
  });

  it("holds the wake member a second ahead on an empty read only while a reader holds entries", async () => {
    const schedule = { retry: "", wake: "wake:x" };
    const q = await queueOf(entries(1), schedule);
    const due = db.keys.due();
    const wake = { ...push, busyWakeMs: 1_000 };
    await takeAll(q, { ...wake, reader: "a" });
    await server.client.zadd(due, 1_000, "wake:x");
    // "a" has its request in flight: "b", finding nothing, leaves the wake to it, a second on.
    await takeAll(q, { ...wake, reader: "b" });
    expect(await server.client.zscore(due, "wake:x")).toBe("2000");
    // "a" acks and finds nothing: nobody holds anything, whether or not its run ends here.
    await takeAll(q, { ...wake, reader: "a", ack: ["1000-1"] });
    expect(await server.client.zscore(due, "wake:x")).toBeNull();
  });
});
