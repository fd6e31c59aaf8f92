// sendBatch shares requests between the batches of one client (the deliverers of an invocation):
// while two of its requests are out, the batches sent meanwhile wait and go together in the
// next. Each keeps its own replies, and a reply that never comes back is lost for each of them,
// its calls having run once. Against a throwaway redis-server, through the bridge, which holds
// or drops requests on purpose.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Bridge } from "../../dev/bridge.ts";
import { type Call, type Db, isOutcomeUnknown, type Reply, sendBatch } from "../../shared/redis.ts";
import { type BridgedDb, startBridgedDb } from "../helpers/bridged-db.ts";
import type { RedisServer } from "../helpers/redis-server.ts";

let server: RedisServer;
let bridge: Bridge;
let db: Db;
let stack: BridgedDb | undefined;

beforeAll(async () => {
  stack = await startBridgedDb();
  ({ server, bridge, db } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

beforeEach(async () => {
  bridge.faults.clear();
  await server.client.flushall();
});

const incr = (key: string): Call => ({ add: (p) => p.incr(key) });
const values = (replies: Reply[]) => replies.map((r) => (r.ok ? r.value : r.error.message));

/** Two requests held out by the bridge for 300 ms: what is sent meanwhile has to wait. */
function twoOut() {
  bridge.faults.add({ kind: "delay", match: ["GET"], delayMs: 300, times: 2 });
  return Promise.all([
    sendBatch(db.once, [{ add: (p) => p.get("x") }]),
    sendBatch(db.once, [{ add: (p) => p.get("y") }]),
  ]);
}

describe("batches sent while two requests are out", () => {
  it("go together in one request, each with its own replies in order", async () => {
    const before = bridge.stats.requests;
    const out = twoOut();
    const [a, b] = await Promise.all([
      sendBatch(db.once, [incr("a")]),
      sendBatch(db.once, [incr("b"), incr("b")]),
    ]);
    await out;
    expect(values(a)).toEqual([1]);
    expect(values(b)).toEqual([1, 2]);
    expect(bridge.stats.requests - before).toBe(3);
  });

  it("lose a reply that never came back each, their calls run once", async () => {
    const out = twoOut();
    bridge.faults.add({ kind: "drop-reply", match: ["INCR"], times: 1 });
    const settled = await Promise.allSettled([
      sendBatch(db.once, [incr("a")]),
      sendBatch(db.once, [incr("b")]),
    ]);
    await out;
    for (const s of settled) {
      expect(s.status).toBe("rejected");
      expect(isOutcomeUnknown((s as PromiseRejectedResult).reason)).toBe(true);
    }
    expect(await server.client.mget("a", "b")).toEqual(["1", "1"]);
    expect(bridge.faults.injected["drop-reply"]).toBeGreaterThan(0);
  });
});
