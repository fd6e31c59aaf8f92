// The client package's README (client/README.md, what npm shows) shows its examples as the files
// the tests run (receive.test.ts runs the Node one, worker-example.test.ts the Workers one) and
// tsc checks: as they are, not as they were.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..");
const readme = readFileSync(join(ROOT, "client", "README.md"), "utf8");

describe("the client package's README", () => {
  it.each(["node.ts", "worker.ts"])("shows client/examples/%s as it is", (file) => {
    const example = readFileSync(join(ROOT, "client", "examples", file), "utf8");
    expect(readme, `paste client/examples/${file} into client/README.md again`).toContain(
      `\`\`\`ts\n${example}\`\`\`\n`,
    );
  });
});
