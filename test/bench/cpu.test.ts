// bench/cpu.ts: the benchmark reads a Worker's CPU time from its workerd process in /proc, so
// it must read what the kernel counts, and find the runtime's workerd, not wrangler's proxy.

import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { CPU_TICK_MS, cpuMs, workerdPid } from "../../bench/cpu.ts";

describe("a process' CPU time from /proc", () => {
  it("reads the same CPU time as the process' own clock, to within two ticks", () => {
    const before = { proc: cpuMs(process.pid), own: process.cpuUsage() };
    let spent = 0;
    while (spent < 300) {
      const { user, system } = process.cpuUsage(before.own);
      spent = (user + system) / 1000;
    }
    const own = process.cpuUsage(before.own);
    const read = cpuMs(process.pid) - before.proc;
    expect(Math.abs(read - (own.user + own.system) / 1000)).toBeLessThanOrEqual(2 * CPU_TICK_MS);
  });

  it("throws for a process that is gone", () => {
    expect(() => cpuMs(2 ** 22 + 1)).toThrow("is gone"); // above Linux's largest pid
  });
});

describe("the workerd that runs the Worker under wrangler dev", () => {
  let tree: ChildProcess | undefined;
  afterEach(() => {
    if (tree?.pid) process.kill(-tree.pid, "SIGKILL");
  });

  // A root process with two processes named workerd below it, as `wrangler dev` has: the proxy
  // on the dev port (4321 here) and the runtime on a port of its own (0).
  const fake = (port: number) =>
    `(exec -a /fake/bin/workerd bash -c 'sleep 30; :' --socket-addr=entry=127.0.0.1:${port}) &`;
  async function start() {
    tree = spawn("bash", ["-c", `${fake(4321)} ${fake(0)} wait`], {
      detached: true,
      stdio: "ignore",
    });
    const root = tree.pid!;
    // Until both run: the runtime is the one not on 4321, and the proxy the one not on 0.
    for (let tries = 0; tries < 100; tries++) {
      try {
        const proxy = workerdPid(root, 0);
        return { root, runtime: workerdPid(root, 4321), proxy };
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    throw new Error("the fake workerd processes did not start");
  }

  it("finds the one not listening on the dev port", async () => {
    const { runtime, proxy } = await start();
    expect(runtime).not.toBe(proxy);
    const command = readFileSync(`/proc/${runtime}/cmdline`, "utf8").split("\0");
    expect(command[0]).toBe("/fake/bin/workerd");
    expect(command).toContain("--socket-addr=entry=127.0.0.1:0");
  });

  it("refuses to guess when neither listens on the dev port", async () => {
    const { root } = await start();
    expect(() => workerdPid(root, 9999)).toThrow(/cannot tell the Worker's workerd/);
  });
});
