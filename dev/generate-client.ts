// `npm run client:generate`: writes the API's OpenAPI document to client/openapi.json, then the
// typed client's types to client/schema.d.ts with openapi-typescript. Run it after changing a
// route or a schema; `npm test` fails until the committed files match the app again.
//
// openapi-typescript is not a devDependency: it needs typescript ^5 as a peer, and this project
// builds with typescript 7, which has no JavaScript API. So npx runs it in a throwaway install
// with its own typescript 5, pinned here. `--default-non-nullable false`: a field with a default
// stays optional in request bodies (`max` of a pull), as the API takes it.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import { commandLine, parseOptions } from "./cli.ts";

const OPENAPI_TYPESCRIPT = ["-p", "typescript@5", "-p", "openapi-typescript@7.13.0"];

const USAGE = `usage: npm run client:generate

Writes the API's OpenAPI document to client/openapi.json and the typed client's types to
client/schema.d.ts (openapi-typescript through npx: needs the npm registry). Takes no options.

  -h, --help   print this and exit`;
commandLine("client:generate", USAGE, (argv) => parseOptions(argv, {}));

// The app imports the dashboard's .tsx, which Node's type stripping does not take. esbuild (the
// compiler wrangler itself uses, so always installed with it) compiles client-schema.ts and what
// it imports into one module; packages stay imports, resolved from this repo's node_modules.
const root = join(import.meta.dirname, "..");
const compiled = join(root, "node_modules", ".cache", "streamhook", "client-schema.mjs");
mkdirSync(join(compiled, ".."), { recursive: true });
await build({
  entryPoints: [join(import.meta.dirname, "client-schema.ts")],
  outfile: compiled,
  bundle: true,
  platform: "node",
  format: "esm",
  packages: "external",
  tsconfig: join(root, "tsconfig.json"),
  // client-schema.ts finds client/ from its own directory, not the compiled module's.
  define: { "import.meta.dirname": JSON.stringify(import.meta.dirname) },
  logLevel: "warning",
});
const { currentDocumentText, OPENAPI_JSON, SCHEMA_DTS, schemaHeader } = (await import(
  pathToFileURL(compiled).href
)) as typeof import("./client-schema.ts");

const document = currentDocumentText();
writeFileSync(OPENAPI_JSON, document);

const scratch = mkdtempSync(join(tmpdir(), "streamhook-client-"));
try {
  const out = join(scratch, "schema.d.ts");
  execFileSync(
    "npx",
    ["--yes", ...OPENAPI_TYPESCRIPT, "openapi-typescript", OPENAPI_JSON, "-o", out].concat([
      "--default-non-nullable",
      "false",
    ]),
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  writeFileSync(SCHEMA_DTS, `${schemaHeader(document)}\n${readFileSync(out, "utf8")}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`wrote ${OPENAPI_JSON} and ${SCHEMA_DTS}`);
