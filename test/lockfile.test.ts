import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

// `npm ci` refuses a lockfile that leaves out any optional dependency, including other
// platforms' binaries (workerd's, Biome's), which npm 11 drops when it rewrites the lockfile
// next to an installed tree. This is the check `npm ci` makes, run on every platform's behalf.
interface LockEntry {
  version?: string;
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(readFileSync(join(import.meta.dirname, "..", "package-lock.json"), "utf8"));
const packages: Record<string, LockEntry> = lock.packages;

/** Where npm resolves `name` from the package at `from`: its own node_modules, then upwards. */
function resolve(from: string, name: string): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ""}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const up = dir.lastIndexOf("/node_modules/");
    dir = up === -1 ? "" : dir.slice(0, up);
  }
}

describe("package-lock.json", () => {
  it("lists every optional dependency of every platform, so `npm ci` accepts it anywhere", () => {
    const missing: string[] = [];
    for (const [path, entry] of Object.entries(packages)) {
      for (const name of Object.keys(entry.optionalDependencies ?? {}))
        if (!resolve(path, name)) missing.push(`${name} (for ${path || "the root"})`);
    }
    expect(missing).toEqual([]);
  });
});
