// The typed client's methods are named after the document's operationIds: operationId
// `subscriptions.rotateSecret` is client.subscriptions.rotateSecret, so a reader of the document
// (or of a client generated from it in another language) finds the same names here.

import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createStreamhookClient } from "../../client/index.ts";
import { OPENAPI_JSON } from "../../dev/client-schema.ts";

interface Document {
  paths: Record<string, Record<string, { operationId?: string }>>;
  webhooks: Record<string, Record<string, { operationId?: string }>>;
}
const document = JSON.parse(readFileSync(OPENAPI_JSON, "utf8")) as Document;
const idsOf = (operations: Document["paths"]) =>
  Object.values(operations).flatMap((byMethod) =>
    Object.values(byMethod).map((operation) => operation.operationId),
  );

// Operations without a method of their own: the client reaches them through `client.api`, the
// openapi-fetch client typed from the same document.
const THROUGH_API = ["health", "deliver", "keys.create", "keys.list", "keys.delete"];
// Methods that are no operation of their own.
const NOT_OPERATIONS = {
  api: "the typed openapi-fetch client itself",
  publishBatch: "the publish operation with {messages}",
};

/** The client's methods by dotted name: "publish", "channels.list", ... */
function methodNames(client: object, prefix = ""): string[] {
  return Object.entries(client).flatMap(([name, value]) => {
    if (typeof value === "function") return [`${prefix}${name}`];
    if (name === "api") return [name];
    return methodNames(value as object, `${prefix}${name}.`);
  });
}

describe("operationIds and the client's method names", () => {
  const client = createStreamhookClient({ baseUrl: "http://127.0.0.1:9", token: "unused" });
  const methods = methodNames(client);
  const ids = idsOf(document.paths);

  it("gives every operation an operationId, each once", () => {
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(idsOf(document.webhooks)).toEqual(["webhooks.batch"]);
  });

  it("has a method named after each operationId, but those reached through client.api", () => {
    const withMethod = ids.filter((id) => !THROUGH_API.includes(id as string));
    expect(withMethod.filter((id) => !methods.includes(id as string))).toEqual([]);
    expect(THROUGH_API.filter((id) => !ids.includes(id))).toEqual([]);
  });

  it("names no method after anything but an operationId", () => {
    const others = methods.filter((name) => !ids.includes(name));
    expect(others.sort()).toEqual(Object.keys(NOT_OPERATIONS).sort());
  });
});
