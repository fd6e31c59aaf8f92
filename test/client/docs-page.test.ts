// The Client page's examples (docs/client.md) are the files the tests run (receive.test.ts runs
// the Node one, worker-example.test.ts the Workers one) and tsc checks: shown as they are, not as
// they were.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const page = readFileSync(join(ROOT, "docs", "client.md"), "utf8");

describe("the docs' Client page", () => {
  it.each(["node.ts", "worker.ts"])("shows client/examples/%s as it is", (file) => {
    const example = readFileSync(join(ROOT, "client", "examples", file), "utf8");
    expect(page, `paste client/examples/${file} into docs/client.md again`).toContain(
      `\`\`\`ts\n${example}\`\`\`\n`,
    );
  });
});
