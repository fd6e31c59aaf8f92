// `npm run client:generate`: writes the API's OpenAPI document to client/openapi.json, then the
// typed client's types to client/schema.d.ts with openapi-typescript. Run it after changing a
// route or a schema; `npm test` fails until the committed files match the app again.
//
// openapi-typescript is not a devDependency: it needs typescript ^5 as a peer, and this project
// builds with typescript 7, which has no JavaScript API. So npx runs it in a throwaway install
// with its own typescript 5, pinned here. `--default-non-nullable false`: a field with a default
// stays optional in request bodies (`max` of a pull), as the API takes it.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { currentDocumentText, OPENAPI_JSON, SCHEMA_DTS, schemaHeader } from "./client-schema.ts";

const OPENAPI_TYPESCRIPT = ["-p", "typescript@5", "-p", "openapi-typescript@7.13.0"];

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
