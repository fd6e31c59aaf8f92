// The docs (README.md and docs/*.md) against the code: every configuration variable and every
// route documented where a reader looks for it, and every relative link leading somewhere.
// Their shell examples are run by docs-examples.test.ts.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { createApp } from "../functions/app.ts";
import { CONFIG_VARIABLES } from "../shared/config.ts";
import { anchors, docPages, links, ROOT, readPage } from "./helpers/markdown.ts";

describe("the Operations page", () => {
  const page = readPage("docs/operations.md");

  it("lists every configuration variable of the Worker in its table", () => {
    // A table row starting with the variable; Biome pads Markdown tables, so spaces may vary.
    for (const name of CONFIG_VARIABLES)
      expect(page).toMatch(new RegExp(`\\|\\s*\`${name}\`\\s*\\|`));
  });
});

describe("the Performance page", () => {
  it("shows the committed benchmark results as npm run bench wrote them", () => {
    const latest = readFileSync(join(ROOT, "bench", "results", "latest.md"), "utf8").trim();
    expect(readPage("docs/performance.md"), "paste bench/results/latest.md again").toContain(
      latest,
    );
  });
});

describe("the API page", () => {
  it("documents every route of the API", () => {
    const page = readPage("docs/api.md");
    const app = createApp(() => {
      throw new Error("not called: the document is generated without requests");
    });
    const doc = app.getOpenAPI31Document({ openapi: "3.1.0", info: { title: "", version: "" } });
    for (const [path, operations] of Object.entries(doc.paths ?? {})) {
      for (const method of Object.keys(operations)) {
        expect(page).toContain(`\`${method.toUpperCase()} ${path}`);
      }
    }
  });
});

describe("links in the docs", () => {
  const checked = [...docPages(), "DEVELOPERS.md"];

  it.each(checked)(
    "every relative link of %s leads to a file, and its anchor to a heading",
    (page) => {
      const broken: string[] = [];
      for (const { target, line } of links(readPage(page))) {
        if (/^[a-z][a-z+.-]*:/i.test(target)) continue; // https:, mailto:...
        const [path, anchor] = target.split("#", 2) as [string, string | undefined];
        const file = path === "" ? page : normalize(join(dirname(page), decodeURI(path)));
        const where = `${page}:${line}: ${target}`;
        if (relative(ROOT, join(ROOT, file)).startsWith("..")) {
          broken.push(`${where} (outside the repository)`);
        } else if (!existsSync(join(ROOT, file))) {
          broken.push(`${where} (no such file)`);
        } else if (
          anchor !== undefined &&
          file.endsWith(".md") &&
          !anchors(readPage(file)).has(anchor)
        ) {
          broken.push(`${where} (no such heading)`);
        }
      }
      expect(broken).toEqual([]);
    },
  );

  it("links every page under docs/ from the README", () => {
    const targets = links(readPage("README.md")).map(({ target }) => target.split("#")[0]);
    for (const page of docPages().slice(1)) expect(targets).toContain(page);
  });
});
