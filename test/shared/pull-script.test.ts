// The pull script (shared/lua/pull.ts) writes each message's JSON text itself, in Redis' Lua: its
// publishedAt from integer date arithmetic, its type through cjson, and it applies the types
// filter with Lua patterns. Checked here against JavaScript (toISOString, JSON, and the push
// deliverer's matchesTypes) on generated messages, run through the bridge as the Worker runs it.

import { Redis } from "@upstash/redis";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { PULL_LUA } from "../../shared/lua/pull.ts";
import { matchesTypes } from "../../shared/subscription.ts";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.ts";

const TOKEN = "test-bridge-token";
/** The latest instant JavaScript's Date holds: +275760-09-13T00:00:00.000Z. */
const MAX_DATE_MS = 8.64e15;

let server: RedisServer;
let bridge: Bridge;
let redis: Redis;
let streams = 0;

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startBridge({ redisUrl: server.url, token: TOKEN });
  redis = new Redis({
    url: bridge.url,
    token: TOKEN,
    automaticDeserialization: false,
    responseEncoding: false,
  });
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
});

interface Entry {
  ms: number;
  fields: Record<string, string>;
}

/** A fresh stream holding `entries` (ids `<ms>-1`) and a group "g" that has read none of them. */
async function streamOf(entries: Entry[]) {
  const stream = `pull-script-${streams++}`;
  for (const { ms, fields } of entries) {
    await server.client.xadd(stream, `${ms}-1`, ...Object.entries(fields).flat());
  }
  await server.client.xgroup("CREATE", stream, "g", "0");
  return stream;
}

/** One run of the script for consumer "c": every entry, no ack, the given type patterns. */
async function run(stream: string, types: string[] = []) {
  const args = ["g", "c", "1000", "1000", "2000", String(8 * 1024 * 1024), String(types.length)];
  const reply = (await redis.eval(PULL_LUA, [stream], [...args, ...types])) as unknown[];
  const [, json, count] = reply;
  return { messages: JSON.parse(json as string) as unknown[], count: Number(count) };
}

const ascending = (values: number[]) => [...values].sort((a, b) => a - b);

describe("the pull script's answer", () => {
  it("writes each message as JSON, dated as toISOString would", async () => {
    const message = fc.record({
      type: fc.option(fc.string({ unit: "grapheme", maxLength: 12 }), { nil: undefined }),
      data: fc.json({ maxDepth: 2 }),
      redrivenFrom: fc.option(fc.integer({ min: 0, max: MAX_DATE_MS }), { nil: undefined }),
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
        async (times, shapes) => {
          const entries = ascending(times).map((ms, i) => {
            const { type, data, redrivenFrom } = shapes[i]!;
            const fields: Record<string, string> = { d: data };
            if (type !== undefined) fields.t = type;
            if (redrivenFrom !== undefined) fields.o = `${redrivenFrom}-7`;
            return { ms, fields };
          });
          const { messages, count } = await run(await streamOf(entries));
          expect(count).toBe(entries.length);
          expect(messages).toEqual(
            entries.map(({ ms, fields }) => ({
              id: `${ms}-1`,
              type: fields.t ?? null,
              data: JSON.parse(fields.d!),
              publishedAt: new Date(fields.o ? Number(fields.o.split("-")[0]) : ms).toISOString(),
              attempt: 1,
              ...(fields.o ? { redrivenFrom: fields.o } : {}),
            })),
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it("keeps the types its patterns match, as push does, and acks the others", async () => {
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
          const stream = await streamOf(entries);
          const { messages } = await run(stream, patterns);
          const wanted = entries.filter((e) => matchesTypes(patterns, e.fields.t ?? null));
          expect(messages.map((m) => (m as { id: string }).id)).toEqual(
            wanted.map((e) => `${e.ms}-1`),
          );
          // Only what was handed out stays pending: the others were acked by the run.
          const pending = (await server.client.xpending(stream, "g")) as [number, ...unknown[]];
          expect(Number(pending[0])).toBe(wanted.length);
        },
      ),
      { numRuns: 150 },
    );
  });
});
