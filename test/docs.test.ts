import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createApp } from "../functions/app.ts";
import { CONFIG_VARIABLES } from "../shared/config.ts";

const readme = readFileSync(join(import.meta.dirname, "..", "README.md"), "utf8");

describe("the README", () => {
  it("lists every configuration variable of the Worker in its table", () => {
    // A table row starting with the variable; Biome pads Markdown tables, so spaces may vary.
    for (const name of CONFIG_VARIABLES)
      expect(readme).toMatch(new RegExp(`\\|\\s*\`${name}\`\\s*\\|`));
  });

  it("documents every route of the API", () => {
    const app = createApp(() => {
      throw new Error("not called: the document is generated without requests");
    });
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "", version: "" } });
    for (const [path, operations] of Object.entries(doc.paths ?? {})) {
      for (const method of Object.keys(operations)) {
        expect(readme).toContain(`\`${method.toUpperCase()} ${path}`);
      }
    }
  });
});
