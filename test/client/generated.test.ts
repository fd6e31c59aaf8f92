// The typed client is generated from the API's own document: a route or schema changed without
// `npm run client:generate` fails here, before a user gets types that lie.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  currentDocumentText,
  OPENAPI_JSON,
  REGENERATE,
  SCHEMA_DTS,
  schemaSourceHash,
  sha256Hex,
} from "../../dev/client-schema.ts";

const committed = readFileSync(OPENAPI_JSON, "utf8");

describe("the typed client's generated files", () => {
  it("client/openapi.json is the document the app generates now", () => {
    const stale = `client/openapi.json is not the API's document any more: run ${REGENERATE}`;
    expect(JSON.parse(committed), stale).toEqual(JSON.parse(currentDocumentText()));
  });

  it("client/schema.d.ts was generated from client/openapi.json as committed", () => {
    const hash = schemaSourceHash(readFileSync(SCHEMA_DTS, "utf8"));
    const stale = `client/schema.d.ts was generated from another openapi.json: run ${REGENERATE}`;
    expect(hash, stale).toBe(sha256Hex(committed));
  });
});
