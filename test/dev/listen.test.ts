// `npm run listen` (dev/listen.ts) as a real process against the real stack: killed and
// restarted mid-stream, it loses no message and writes none twice.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, publish, sleep, subscribe } from "../helpers/subscriptions.ts";

const LISTEN_CLI = join(import.meta.dirname, "..", "..", "dev", "listen.ts");

let stack: Stack;
let dir: string;
beforeAll(async () => {
  stack = await startStack();
  dir = await mkdtemp(join(tmpdir(), "listen-"));
});
afterAll(async () => {
  await stack?.stop();
  await rm(dir, { recursive: true, force: true });
});

function listen(out: string, env: Record<string, string> = {}): ChildProcess {
  const args = ["--channel", "orders", "--subscription", "billing", "--out", out];
  args.push("--url", stack.url, "--token", API_TOKEN, "--max", "7", "--visibility-ms", "1000");
  args.push("--wait-ms", "1000");
  return spawn(process.execPath, [LISTEN_CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

async function lines(out: string): Promise<string[]> {
  const text = await readFile(out, "utf8").catch(() => "");
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => (JSON.parse(l) as { id: string }).id);
}

async function untilWritten(out: string, count: number) {
  for (let i = 0; i < 300; i++) {
    if ((await lines(out)).length >= count) return;
    await sleep(100);
  }
  throw new Error(`fewer than ${count} lines in ${out}`);
}

describe("npm run listen", () => {
  it("loses and repeats nothing when it crashes between a write and its ack, then restarts", async () => {
    await subscribe(stack, "orders", { name: "billing", mode: "pull" });
    const out = join(dir, "crash.jsonl");
    const ids = await publish(
      stack,
      "orders",
      Array.from({ length: 60 }, (_, n) => ({ type: "order.created", data: { n } })),
    );
    // Crash right after the second batch is on disk, before it is acked.
    expect(await exited(listen(out, { LISTEN_CRASH_AFTER_WRITES: "2" }))).toBe(137);
    expect((await lines(out)).length).toBe(14);
    // Killed mid-stream at whatever moment, then a last run stopped with SIGINT.
    const second = listen(out);
    await untilWritten(out, 30);
    second.kill("SIGKILL");
    await exited(second);
    const third = listen(out);
    await untilWritten(out, 60);
    // Nothing left pending: what was written is acked, including the crash's redelivered batch.
    for (let i = 0; i < 50; i++) {
      if ((await getSubscription(stack, "orders", "billing")).pending === 0) break;
      await sleep(100);
    }
    third.kill("SIGINT");
    expect(await exited(third)).toBe(0);
    // Each id exactly once (a redelivery may land after later messages).
    expect((await lines(out)).sort()).toEqual([...ids].sort());
    expect(await getSubscription(stack, "orders", "billing")).toMatchObject({ pending: 0, lag: 0 });
  }, 40_000);

  it("writes and prints each message's traceparent, the publish's", async () => {
    await subscribe(stack, "traced", { name: "tracing", mode: "pull" });
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const res = await stack.post(
      "/v1/channels/traced/messages",
      { data: { n: 1 }, type: "t" },
      { traceparent, tracestate: "congo=t61rcWkgMzE" },
    );
    const { id } = (await res.json()) as { id: string };
    const out = join(dir, "traced.jsonl");
    const args = ["--channel", "traced", "--subscription", "tracing", "--out", out];
    args.push("--url", stack.url, "--token", API_TOKEN, "--wait-ms", "1000");
    const child = spawn(process.execPath, [LISTEN_CLI, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    await untilWritten(out, 1);
    for (let i = 0; i < 50 && !stdout.includes("\n"); i++) await sleep(100);
    child.kill("SIGINT");
    expect(await exited(child)).toBe(0);
    expect(stdout).toBe(`${id} t ${traceparent} {"n":1}\n`);
    const [line] = (await readFile(out, "utf8")).split("\n");
    expect(JSON.parse(line!)).toMatchObject({ id, traceparent, tracestate: "congo=t61rcWkgMzE" });
  }, 20_000);
});
