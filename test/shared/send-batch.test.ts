// sendBatch shares requests between the batches of one client (the deliverers of an invocation):
// while two of its requests are out, the batches sent meanwhile wait and go together in the
// next. Each keeps its own replies, and a reply that never comes back is lost for each of them,
// its calls having run once. Against a throwaway redis-server, through the bridge, which holds
// or drops requests on purpose.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { loadConfig } from "../../shared/config.ts";
import { unmetered } from "../../shared/meter.ts";
import {
  type Call,
  type Db,
  getDb,
  isOutcomeUnknown,
  type Reply,
  sendBatch,
} from "../../shared/redis.ts";
import { type RedisServer, startRedisServer } from "../helpers/redis-server.ts";

const TOKEN = "test-bridge-token";
let server: RedisServer;
let bridge: Bridge;
let db: Db;

beforeAll(async () => {
  server = await startRedisServer();
  bridge = await startBridge({ redisUrl: server.url, token: TOKEN });
  const config = loadConfig({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: TOKEN,
    API_TOKEN: "unused",
  });
  db = getDb(config, unmetered());
});

afterAll(async () => {
  await bridge?.close();
  await server?.stop();
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
