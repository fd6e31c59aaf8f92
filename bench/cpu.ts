// CPU time of the workerd that runs a Worker, read from /proc: workerd gives JavaScript no CPU
// clock (Date.now() stands still while a request runs, as in production), so the benchmark reads
// the process' own counters around a run of requests. Linux only, like the rest of the stack.
//
// `wrangler dev` runs two workerd processes: a proxy that listens on the dev port and forwards
// each request, and the runtime that runs the Worker (its entry socket on a port of its own).
// The figures are the runtime's: utime + stime of the whole process (every thread's, the runtime's
// own work included: its I/O, its event loop, the garbage collector), so an upper bound of what
// the Worker's code costs.

import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Clock ticks per second of /proc's time fields (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces). */
function statFields(pid: number): string[] | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null; // gone meanwhile
  }
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** Every live process below `root` (children, their children, ...). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const fields = statFields(Number(name));
    if (fields) parents.set(Number(name), Number(fields[1])); // field 4 of stat: ppid
  }
  const found: number[] = [];
  const below = new Set([root]);
  // A pid is greater than its parent's only until pids wrap around: loop until nothing is added.
  for (let added = true; added; ) {
    added = false;
    for (const [pid, ppid] of parents) {
      if (below.has(ppid) && !below.has(pid)) {
        below.add(pid);
        found.push(pid);
        added = true;
      }
    }
  }
  return found;
}

const commandLineOf = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return [];
  }
};

/**
 * The pid of the workerd running the Worker under the `wrangler dev` process `root`, whose
 * proxy listens on `port`. Throws if it cannot tell which one it is.
 */
export function workerdPid(root: number, port: number): number {
  const workerds = descendants(root).filter((pid) =>
    (commandLineOf(pid)[0] ?? "").endsWith("/workerd"),
  );
  const runtimes = workerds.filter(
    (pid) => !commandLineOf(pid).includes(`--socket-addr=entry=127.0.0.1:${port}`),
  );
  if (runtimes.length !== 1) {
    const seen = workerds.map((pid) => `${pid}: ${commandLineOf(pid).join(" ")}`).join("\n");
    throw new Error(`cannot tell the Worker's workerd under pid ${root}; workerd seen:\n${seen}`);
  }
  return runtimes[0]!;
}

/** The process' CPU time so far (user + system, all its threads), in ms. */
export function cpuMs(pid: number): number {
  const fields = statFields(pid);
  if (!fields) throw new Error(`process ${pid} is gone`);
  // Fields 14 and 15 of stat (utime, stime), counted from the state (field 3) here.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
}

/** The resolution of cpuMs: one clock tick, in ms. */
export const CPU_TICK_MS = 1000 / TICKS_PER_SECOND;

/** The CPU time `pid` spent while `run` ran, in ms, and what `run` returned. */
export async function cpuDuring<T>(pid: number, run: () => Promise<T>) {
  const before = cpuMs(pid);
  const result = await run();
  return { ms: cpuMs(pid) - before, result };
}
