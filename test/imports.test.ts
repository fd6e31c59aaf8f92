// No module imports itself through others (type-only imports included): each circle meant two
// files that could not be read, tested or changed apart (the app and its routes, the client and
// its method groups, the bench's report and chart, two dashboard panels). dpdm walks the import
// graph as TypeScript resolves it; a library, not a hand-written walker.

import { join } from "node:path";
import { parseCircular, parseDependencyTree } from "dpdm";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..");
const SOURCES = [
  "functions/**/*.{ts,tsx}",
  "worker/**/*.ts",
  "shared/**/*.ts",
  "client/**/*.ts",
  "bench/**/*.ts",
  "dev/**/*.ts",
  "test/**/*.ts",
];

describe("the import graph", () => {
  it("has no circle", async () => {
    const tree = await parseDependencyTree(SOURCES, {
      context: root,
      cwd: root,
      tsconfig: join(root, "tsconfig.json"),
      transform: false, // type-only imports count: they tie two files together all the same
      // client/dist is the client package's build, which test/client/package.test.ts remakes.
      exclude: /node_modules|client\/dist\//,
    });
    expect(Object.keys(tree).length).toBeGreaterThan(100);
    expect(parseCircular(tree)).toEqual([]);
  }, 60_000);
});
