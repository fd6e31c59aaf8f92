// The take script's window (shared/lua/take.ts, step 5: adaptive concurrency), driven step by
// step through the engine's `take` and the bridge: how each take's signals move the stored
// window, and what each costs in Redis commands.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { channelQueue, WAITING_ROOM } from "../../shared/engine/queue.ts";
import { type Signals, take, type Window } from "../../shared/engine/take.ts";
import { stateField } from "../../shared/keys.ts";
import type { Db } from "../../shared/redis.ts";
import { START_CONCURRENCY } from "../../shared/subscription.ts";
import { type BridgedDb, startBridgedDb } from "../helpers/bridged-db.ts";
import { countCommands, type RedisServer } from "../helpers/redis-server.ts";

let server: RedisServer;
let db: Db;
let stack: BridgedDb | undefined;
let channels = 0;

beforeAll(async () => {
  stack = await startBridgedDb();
  ({ server, db } = stack);
});
afterAll(() => stack?.stop());

/** A push subscription's queue on a fresh channel, its group made, capped at `max`. */
async function subscription(max: number) {
  const sub = { channel: `window-${channels++}`, name: "sub", group: "g", mode: "push" as const };
  const q = channelQueue(db, sub, { retry: "", wake: "" });
  await server.client.xgroup("CREATE", q.stream, q.group, "$", "MKSTREAM");
  /** A push take by a reader that settles what its requests met and asks for `count` more. */
  const step = async (signals: Partial<Signals>, known: Window | null, now = 1_000, count = 0) => {
    const out: { window: Window | null } = { window: null };
    const counted = await countCommands(server.client, async () => {
      out.window = (
        await take(db.redis, db, q, {
          reader: "r",
          holder: WAITING_ROOM,
          now,
          count,
          visibilityMs: 30_000,
          byteBudget: 1024 * 1024,
          cap: { requests: max, batchSize: 1, own: 0 },
          window: { succeeded: 0, congestedAt: 0, ...signals, start: START_CONCURRENCY, known },
        })
      ).window;
    });
    const { evalsha, eval: evaluated, ...commands } = counted.byCommand;
    return { window: out.window, commands };
  };
  const stored = async () =>
    server.client.hmget(
      db.keys.state(q.channel),
      stateField(q.subscription, "concurrency"),
      stateField(q.subscription, "concurrencyCutAt"),
    );
  return { step, stored };
}

describe("a subscription's window of requests in flight", () => {
  it("starts at the start on a reader's first take, read and written whole", async () => {
    const { step, stored } = await subscription(25);
    expect(await step({}, null, 1_000, 10)).toEqual({
      window: { size: START_CONCURRENCY, cutAt: 0 },
      // The window's read and first write; the room's XPENDING and the read that finds nothing.
      commands: { hmget: 1, hset: 1, xpending: 1, xreadgroup: 1 },
    });
    expect(await stored()).toEqual([String(START_CONCURRENCY), "0"]);
  });

  it("grows by one per success until its first cut (slow start), in one command", async () => {
    const { step } = await subscription(25);
    const first = (await step({ succeeded: 3 }, null)).window!;
    expect(first).toEqual({ size: START_CONCURRENCY + 3, cutAt: 0 });
    expect(await step({ succeeded: 5 }, first)).toEqual({
      window: { size: START_CONCURRENCY + 8, cutAt: 0 },
      // A take that neither reads nor ends sees the group before it writes (see below).
      commands: { hincrbyfloat: 1, xpending: 1 },
    });
  });

  it("is halved by congestion from a request sent after its last cut, and once only", async () => {
    const { step, stored } = await subscription(25);
    const grown = (await step({ succeeded: 8 }, null)).window!;
    expect(grown.size).toBe(10);
    const cut = await step({ congestedAt: 1_500 }, grown, 2_000);
    expect(cut).toEqual({
      window: { size: 5, cutAt: 2_000 },
      commands: { hmget: 1, hset: 1, xpending: 1 },
    });
    expect(await stored()).toEqual(["5", "2000"]);
    // A refusal of a request sent before that cut (the same burst; a repeat of the take): read,
    // nothing cut again.
    expect(await step({ congestedAt: 1_900 }, grown, 2_100)).toEqual({
      window: { size: 5, cutAt: 2_000 },
      commands: { hmget: 1 },
    });
    // One sent after it: cut again.
    expect((await step({ congestedAt: 2_050 }, cut.window, 2_200)).window).toEqual({
      size: 2.5,
      cutAt: 2_200,
    });
  });

  it("is halved after the successes the same take carries: a run alone told none of them", async () => {
    const { step } = await subscription(25);
    const first = (await step({}, null, 1_000, 1)).window!;
    expect(first.size).toBe(START_CONCURRENCY);
    // The run grew its own copy to 12 and kept it (worker/window.ts); then a 429 came.
    const cut = await step({ succeeded: 10, congestedAt: 1_500 }, first, 2_000);
    expect(cut.window).toEqual({ size: (START_CONCURRENCY + 10) / 2, cutAt: 2_000 });
  });

  it("grows by one per window's worth of successes after a cut (additive)", async () => {
    const { step } = await subscription(25);
    const grown = (await step({ succeeded: 6 }, null)).window!;
    const cut = (await step({ congestedAt: 500 }, grown, 1_000)).window!;
    expect(cut.size).toBe(4);
    const more = await step({ succeeded: 2 }, cut);
    expect(more).toEqual({
      window: { size: 4.5, cutAt: 1_000 },
      commands: { hincrbyfloat: 1, xpending: 1 },
    });
    expect((await step({ succeeded: 9 }, more.window)).window!.size).toBe(6.5);
  });

  it("never passes maxConcurrency, and costs nothing once a reader knows it is there", async () => {
    const { step, stored } = await subscription(5);
    const full = (await step({ succeeded: 40 }, null)).window!;
    expect(full).toEqual({ size: 5, cutAt: 0 });
    expect(await stored()).toEqual(["5", "0"]);
    expect(await step({ succeeded: 3 }, full)).toEqual({ window: full, commands: {} });
  });

  it("is never written once the channel is gone: a late take cannot recreate its state", async () => {
    const { step, stored } = await subscription(25);
    const grown = (await step({ succeeded: 3 }, null)).window!;
    const q = channelQueue(
      db,
      { channel: `window-${channels - 1}`, name: "sub", group: "g", mode: "push" },
      {
        retry: "",
        wake: "",
      },
    );
    await server.client.del(q.stream, db.keys.state(q.channel));
    // Growth (HINCRBYFLOAT), a cut and a first read (HSET): each stops at the group.
    await expect(step({ succeeded: 2 }, grown)).rejects.toThrow(/NOGROUP/);
    await expect(step({ congestedAt: 1_500 }, grown, 2_000)).rejects.toThrow(/NOGROUP/);
    await expect(step({ succeeded: 2 }, null)).rejects.toThrow(/NOGROUP/);
    expect(await server.client.exists(db.keys.state(q.channel))).toBe(0);
    expect(await stored()).toEqual([null, null]);
  });

  it("never goes below 1", async () => {
    const { step } = await subscription(25);
    let window: Window | null = null;
    for (let at = 1; at <= 5; at++)
      window = (await step({ congestedAt: at * 10 }, window, at * 10 + 1)).window;
    expect(window!.size).toBe(1);
  });
});
