// The product's Redis clients (shared/redis.ts: getDb, unmetered) against a throwaway
// redis-server behind the REST bridge: for tests of the shared modules that need no Worker.

import { type Bridge, startBridge } from "../../dev/bridge.ts";
import { loadConfig } from "../../shared/config.ts";
import { unmetered } from "../../shared/meter.ts";
import { type Db, getDb } from "../../shared/redis.ts";
import { type RedisServer, startRedisServer } from "./redis-server.ts";

export interface BridgedDb {
  server: RedisServer;
  bridge: Bridge;
  db: Db;
  stop: () => Promise<void>;
}

export async function startBridgedDb(): Promise<BridgedDb> {
  const token = "test-bridge-token";
  const server = await startRedisServer();
  const bridge = await startBridge({ redisUrl: server.url, token });
  const config = loadConfig({
    UPSTASH_REDIS_REST_URL: bridge.url,
    UPSTASH_REDIS_REST_TOKEN: token,
    API_TOKEN: "unused",
  });
  const stop = async () => {
    await bridge.close();
    await server.stop();
  };
  return { server, bridge, db: getDb(config, unmetered()), stop };
}
