// The REST bridge on its own thread, so the benchmark's receivers and driver (main thread) and
// the bridge do not share one event loop: on a 2-core machine that would make the bridge, not
// streamhook, what is measured. Answers "stats" with its request and command counts. Upstash's
// limits are on (their defaults, as in production), and no faults are injected: a benchmark
// measures cost, not recovery.

import { parentPort, workerData } from "node:worker_threads";
import { startBridge } from "../dev/bridge.ts";

const { redisUrl, token } = workerData as { redisUrl: string; token: string };
const bridge = await startBridge({ redisUrl, token, port: 0 });
parentPort?.postMessage({ type: "ready", url: bridge.url });
parentPort?.on("message", async (message: string) => {
  if (message === "stats") parentPort?.postMessage({ type: "stats", ...bridge.stats });
  if (message === "close") {
    await bridge.close();
    parentPort?.postMessage({ type: "closed" });
  }
});
