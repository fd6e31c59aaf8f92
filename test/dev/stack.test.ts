// `npm run dev` (dev/stack.ts) as a real process, on free ports and a throwaway data directory:
// what a developer sees in its terminal when a webhook fails.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { freePort } from "../helpers/redis-server.ts";

const ROOT = join(import.meta.dirname, "..", "..");
const API_TOKEN = "stack-test-token";

let dev: ChildProcess;
let output = "";
let base: string;
let dataDir: string;
let receiver: TestReceiver;

/** Resolves once the stack's output (wrangler's included) matches; rejects with it after a while. */
async function untilPrinted(pattern: RegExp, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = output.match(pattern);
    if (match) return match[0];
    if (dev.exitCode !== null || Date.now() > deadline) {
      throw new Error(`no ${pattern} in the output of npm run dev:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const api = (path: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "dev-stack-"));
  receiver = await startReceiver();
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  dev = spawn(process.execPath, [join(ROOT, "dev", "stack.ts")], {
    cwd: ROOT,
    env: {
      ...process.env,
      // As dev/bootstrap.mjs runs it: the project's Node first on PATH (wrangler needs it).
      PATH: `${join(ROOT, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
      WRANGLER_SEND_METRICS: "false",
      PORT: String(port),
      REDIS_PORT: String(await freePort()),
      BRIDGE_PORT: String(await freePort()),
      REDIS_DIR: dataDir,
      API_TOKEN,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  for (const stream of [dev.stdout!, dev.stderr!]) {
    stream.on("data", (chunk: Buffer) => {
      output += chunk.toString();
    });
  }
  await untilPrinted(/\[streamhook\] ready: /, 55_000);
});

afterAll(async () => {
  if (dev && dev.exitCode === null) {
    const exited = new Promise((resolve) => dev.once("exit", resolve));
    dev.kill("SIGTERM");
    await exited;
  }
  await receiver?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe("npm run dev", () => {
  it("prints each failed webhook request as it happens: channel, subscription, status", async () => {
    receiver.respond({ status: 500 });
    const created = await api("/v1/channels/orders/subscriptions", {
      name: "billing",
      url: receiver.url,
      from: "earliest",
    });
    expect(created.status).toBe(201);
    expect((await api("/v1/channels/orders/messages", { data: { id: 42 } })).status).toBe(201);
    // The publish's kick sends at once; no cron or pass is waited for.
    await receiver.waitFor((r) => r.requests.some((q) => q.status === 500));
    const line = await untilPrinted(/webhook failed: orders\/billing: [^\n]*/, 10_000);
    expect(line).toMatch(
      /^webhook failed: orders\/billing: HTTP 500, 1 message, attempt 1; retry in/,
    );
  });

  it("stops everything on SIGTERM and exits 0", async () => {
    const exited = new Promise<number | null>((resolve) => dev.once("exit", resolve));
    dev.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(output).toContain("[streamhook] stopping...");
  });
});
