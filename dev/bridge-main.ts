// `npm run bridge`: the Upstash REST bridge in front of a local redis-server, until Ctrl-C.
//
//   REDIS_URL     the redis-server to front        default redis://127.0.0.1:6380
//   BRIDGE_PORT   port on 127.0.0.1 (0 = any free)  default 8079
//   BRIDGE_TOKEN  the bearer token clients send     default dev-bridge-token
//   BRIDGE_MAX_*, BRIDGE_FAULTS, BRIDGE_FAULT_SEED  Upstash's limits and injected faults: see
//                 bridge-env.ts (limits default to Upstash's, no faults)
//
// Point the Worker at it with UPSTASH_REDIS_REST_URL=<printed URL> and the token.

import { startBridge } from "./bridge.ts";
import { bridgeOptionsFromEnv } from "./bridge-env.ts";
import { redacted } from "./bridge-redis.ts";
import { commandLine, parseOptions } from "./cli.ts";

const USAGE = `usage: npm run bridge

The Upstash REST bridge on 127.0.0.1 in front of a running redis-server, until Ctrl-C.
Configured by environment variables, not options (npm run dev starts its own bridge):

  REDIS_URL      the redis-server to front          default redis://127.0.0.1:6380
  BRIDGE_PORT    port on 127.0.0.1 (0 = any free)   default 8079
  BRIDGE_TOKEN   the bearer token clients send      default dev-bridge-token
  BRIDGE_MAX_*, BRIDGE_FAULTS, BRIDGE_FAULT_SEED
                 Upstash's limits and injected faults (dev/bridge-env.ts): limits default to
                 Upstash's, no faults

  -h, --help     print this and exit`;
commandLine("bridge", USAGE, (argv) => parseOptions(argv, {}));

const redisUrl = process.env.REDIS_URL || "redis://127.0.0.1:6380";
const token = process.env.BRIDGE_TOKEN || "dev-bridge-token";
const port = Number(process.env.BRIDGE_PORT || 8079);
if (!Number.isInteger(port) || port < 0 || port > 65_535) {
  console.error(`BRIDGE_PORT must be a port number (0-65535), got "${process.env.BRIDGE_PORT}"`);
  process.exit(2);
}

try {
  const fromEnv = bridgeOptionsFromEnv(process.env);
  const bridge = await startBridge({ redisUrl, token, port, host: "127.0.0.1", ...fromEnv });
  console.log(`bridge listening on ${bridge.url} -> ${redacted(redisUrl)}`);
  if (process.env.BRIDGE_FAULTS)
    console.log(`bridge: injecting faults ${process.env.BRIDGE_FAULTS}`);
  const stop = (signal: NodeJS.Signals) => {
    console.log(`bridge: ${signal}, stopping (served ${bridge.stats.requests} requests)`);
    bridge.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("bridge: could not close cleanly", error);
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
} catch (error) {
  console.error(`bridge: ${(error as Error).message}`);
  process.exit(1);
}
