// --check and --check-only: a run's figures against the targets (report.ts), as an exit code a
// script or CI can act on. The targets are computed again from the figures, so a results file
// is judged by the targets as they are now, not as they were when it was written.

import { readFileSync } from "node:fs";
import { UsageError } from "../dev/cli.ts";
import { targets } from "./report.ts";
import type { Results } from "./results.ts";

export interface Check {
  /** One line per target: met or MISSED, the target, what was measured. */
  lines: string[];
  missed: number;
  total: number;
}

/** Reads a results file (latest.json); a UsageError when it is not one. */
export function readResults(file: string): Results {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`--check-only: cannot read ${file}: ${(error as Error).message}`);
  }
  const startedAt = (parsed as { startedAt?: unknown } | null)?.startedAt;
  if (typeof parsed !== "object" || parsed === null || typeof startedAt !== "string") {
    throw new UsageError(`--check-only: ${file} is not a benchmark results file (no startedAt)`);
  }
  return parsed as Results;
}

/** Every target the results measured, met or missed. */
export function check(results: Results): Check {
  const all = targets(results);
  return {
    lines: all.map((t) => `${t.met ? "met   " : "MISSED"}  ${t.target}: ${t.measured}`),
    missed: all.filter((t) => !t.met).length,
    total: all.length,
  };
}

/** The closing line of a check, for stderr. */
export function verdict({ missed, total }: Check): string {
  if (total === 0) return "check: these results measure no target";
  return missed === 0
    ? `check: ${total} of ${total} targets met`
    : `check: ${missed} of ${total} targets missed`;
}
