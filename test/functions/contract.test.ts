// The OpenAPI document is the contract. Every operation it lists gets requests generated from its
// own schemas (test/helpers/schema-arbitrary.ts, each checked against the schema with Ajv first),
// sent over real HTTP to the Worker: none may be refused with 400, none may answer 5xx, every
// status must be one the document lists for the operation, and every JSON answer must fit the
// schema the document gives for it. Most requests aim at a channel, a push and a pull
// subscription and an API key that exist; a made-up name may well answer 404.
//
// Then each rule the API enforces on a request, broken once: the document refuses the request
// (Ajv) and so does the API, with a 400 naming the rule. And the rules that depend on what is
// stored are not the schema's: they answer 409, as documented.
//
// CONTRACT_RUNS sets the requests per operation (default 30), CONTRACT_SEED the seed (default 24):
// the same seed sends the same requests; fast-check prints the smallest failing one.

import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cronProblem, timezoneProblem } from "../../shared/cron.ts";
import { arbitraryOf, type Schema } from "../helpers/schema-arbitrary.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

const RUNS = Number(process.env.CONTRACT_RUNS ?? 30);
const SEED = Number(process.env.CONTRACT_SEED ?? 24);

interface Parameter {
  name: string;
  in: "path" | "query" | "header";
  required?: boolean;
  schema: Schema;
}
interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: Record<string, { schema: Schema }> };
  responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

let stack: Stack;
let document: Document;
let ajv: Ajv2020;
beforeAll(async () => {
  // No kick on publish: an accepted publish starts no delivery behind the test's back.
  stack = await startStack({ vars: { KICK_ON_PUBLISH: "false" } });
  document = (await (await stack.api("/openapi.json")).json()) as Document;
  // strict: false, because the document carries OpenAPI's own words beside its schemas (paths,
  // operationId, example), which are no JSON Schema keywords.
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // The document's own formats (functions/schedule-schemas.ts): what croner and Intl take.
  ajv.addFormat("cron", (cron: string) => cronProblem(cron, Date.now()) === null);
  ajv.addFormat("time-zone", (zone: string) => timezoneProblem(zone) === null);
  ajv.addSchema(document, "openapi.json");
  await fixtures();
}, 60_000);
afterAll(() => stack?.stop());

// --- What most requests aim at -------------------------------------------------------------------

const CHANNEL = "contract";
// A port nothing listens on: a push subscription made here fails fast and reaches nothing.
const DEAD_URL = "http://127.0.0.1:9/";
const fixture = { channel: [CHANNEL], name: ["push", "pull"], id: [""], delayedId: [""] };

/**
 * The channel, its push subscription (with dead letters), its pull one, an API key and a schedule
 * named "push" (never run: no cron fires here), again if gone.
 */
async function fixtures() {
  const path = `/v1/channels/${CHANNEL}/subscriptions`;
  const missing = async (name: string) => (await stack.api(`${path}/${name}`)).status === 404;
  const [push, pull] = [await missing("push"), await missing("pull")];
  if (push) {
    await subscribe(stack, CHANNEL, {
      name: "push",
      url: DEAD_URL,
      maxAttempts: 1,
      from: "earliest",
    });
  }
  if (pull) await subscribe(stack, CHANNEL, { name: "pull", mode: "pull", from: "earliest" });
  if (push || pull) {
    await publish(stack, CHANNEL, [{ data: { orderId: 1 }, type: "order.created" }, { data: 2 }]);
    await runPass(stack); // one attempt each: the push subscription's dead letters
  }
  if ((await stack.api("/v1/schedules/push")).status === 404) {
    const schedule = { name: "push", channel: CHANNEL, cron: "0 9 * * *", message: { data: 1 } };
    expect((await stack.post("/v1/schedules", schedule)).status).toBe(201);
  }
  // A delayed message that waits (an hour), for the routes of one.
  const delayed = (await (await stack.api(`/v1/channels/${CHANNEL}/delayed`)).json()) as {
    messages: { id: string }[];
  };
  if (!delayed.messages.some((m) => m.id === fixture.delayedId[0])) {
    const res = await stack.post(`/v1/channels/${CHANNEL}/messages`, {
      data: 1,
      delayMs: 3_600_000,
    });
    expect(res.status).toBe(201);
    fixture.delayedId[0] = ((await res.json()) as { id: string }).id;
  }
  const keys = (await (await stack.api("/v1/keys")).json()) as { keys: { id: string }[] };
  if (!keys.keys.some((key) => key.id === fixture.id[0])) {
    const made = await stack.post("/v1/keys", { name: "contract", scopes: ["read"] });
    expect(made.status).toBe(201);
    fixture.id[0] = ((await made.json()) as { id: string }).id;
  }
}

// --- Requests from the document -------------------------------------------------------------------

// Strings of the formats the document uses. Times up to now: a start point in the future is
// refused by the clock, as the document says in words (a schema cannot compare with now).
const FORMATS = {
  "date-time": fc
    .date({ min: new Date("2020-01-01T00:00:00Z"), max: new Date(), noInvalidDate: true })
    .map((date) => date.toISOString()),
  uri: fc.constantFrom(DEAD_URL, "https://127.0.0.1:9/hooks/orders", "http://localhost:9/x"),
  cron: fc.constantFrom(
    "* * * * *",
    "0 9 * * 1-5",
    "*/15 8-18 * * MON-FRI",
    "30 2 1 * *",
    "@daily",
  ),
  "time-zone": fc.constantFrom("UTC", "America/New_York", "Europe/Paris", "Asia/Kolkata"),
};

const resolve = (ref: string): Schema => {
  const schema = document.components.schemas[ref.replace("#/components/schemas/", "")];
  if (!schema) throw new Error(`no schema ${ref}`);
  // A pull's long poll: any waitMs is valid, but up to 20 s of waiting per run would spend the
  // file's time waiting; 0-100 ms still polls.
  const properties = schema.properties as Record<string, Schema> | undefined;
  if (properties?.waitMs) {
    return {
      ...schema,
      properties: { ...properties, waitMs: { ...properties.waitMs, maximum: 100 } },
    };
  }
  return schema;
};
const sample = (schema: Schema) => arbitraryOf(schema, { resolve, formats: FORMATS });

interface Sent {
  path: Record<string, string>;
  query: Record<string, unknown>;
  headers: Record<string, unknown>;
  body: unknown;
}

const params = (op: Operation, where: Parameter["in"]) =>
  (op.parameters ?? []).filter((p) => p.in === where);

/** A path segment: mostly one that exists; "." and ".." are no segments a URL can carry. */
const segment = (p: Parameter) =>
  fc.oneof(
    {
      weight: 3,
      arbitrary: fc.nat().map((i) => {
        const existing = fixture[p.name as keyof typeof fixture];
        return existing[i % existing.length]!;
      }),
    },
    {
      weight: 1,
      arbitrary: sample(p.schema)
        .map(String)
        .filter((s) => s !== "." && s !== ".."),
    },
  );

const record = (ps: Parameter[], value: (p: Parameter) => fc.Arbitrary<unknown>) =>
  fc.record(Object.fromEntries(ps.map((p) => [p.name, value(p)])), {
    requiredKeys: ps.filter((p) => p.required).map((p) => p.name),
  });

const bodySchema = (op: Operation) => op.requestBody?.content["application/json"]?.schema;

function requestOf(op: Operation): fc.Arbitrary<Sent> {
  const schema = bodySchema(op);
  const body = schema ? sample(schema) : fc.constant(undefined);
  return fc.record({
    path: record(params(op, "path"), segment) as fc.Arbitrary<Record<string, string>>,
    query: record(params(op, "query"), (p) => sample(p.schema)),
    headers: record(params(op, "header"), (p) => sample(p.schema)),
    body: schema && !op.requestBody?.required ? fc.option(body, { nil: undefined }) : body,
  });
}

/** Ajv's verdict on `value` against the schema at `pointer` in the document. */
function fits(pointer: string, value: unknown): { ok: boolean; errors: string } {
  const validate = ajv.getSchema(`openapi.json#${pointer}`);
  if (!validate) throw new Error(`no schema at ${pointer}`);
  const ok = validate(value) as boolean;
  return { ok, errors: ajv.errorsText(validate.errors) };
}
const pointerPart = (s: string) => s.replaceAll("~", "~0").replaceAll("/", "~1");
const bodyPointer = (path: string, method: string) =>
  `/paths/${pointerPart(path)}/${method}/requestBody/content/application~1json/schema`;

async function send(path: string, method: string, r: Sent) {
  const url = new URL(
    `${stack.url}${path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(r.path[name]!))}`,
  );
  for (const [name, value] of Object.entries(r.query)) {
    if (value !== undefined) url.searchParams.set(name, String(value));
  }
  const headers: Record<string, string> = { authorization: `Bearer ${API_TOKEN}` };
  for (const [name, value] of Object.entries(r.headers)) headers[name] = String(value);
  if (r.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(url, {
    method: method.toUpperCase(),
    headers,
    body: r.body === undefined ? undefined : JSON.stringify(r.body),
  });
  return {
    url,
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    text: await res.text(),
  };
}

const operations = () =>
  Object.entries(document.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ path, method, op })),
  );

describe("every operation of the document, sent valid requests generated from it", () => {
  // The operations, by id, once the document is there (it.each needs them before it is).
  const IDS = [
    "health",
    "publish",
    "history",
    "channels.list",
    "channels.get",
    "channels.setRetention",
    "channels.delete",
    "subscriptions.create",
    "subscriptions.list",
    "subscriptions.get",
    "subscriptions.update",
    "subscriptions.delete",
    "subscriptions.rotateSecret",
    "subscriptions.replay",
    "subscriptions.attempts",
    "subscriptions.pull",
    "subscriptions.ack",
    "subscriptions.nack",
    "subscriptions.extend",
    "deadLetters.list",
    "deadLetters.redrive",
    "deadLetters.purge",
    "delayed.list",
    "delayed.cancel",
    "metrics",
    "deliver",
    "keys.create",
    "keys.list",
    "keys.delete",
    "schedules.create",
    "schedules.list",
    "schedules.get",
    "schedules.update",
    "schedules.delete",
  ];
  it("gives every route an operationId, each once: the operations this file sends", () => {
    expect(
      operations()
        .map(({ op }) => op.operationId)
        .sort(),
    ).toEqual([...IDS].sort());
  });

  it.each(IDS)(
    "%s: never 400, never 5xx, only documented statuses, answers that fit their schemas",
    async (id) => {
      const { path, method, op } = operations().find(({ op }) => op.operationId === id)!;
      const schema = bodySchema(op);
      await fc.assert(
        fc.asyncProperty(requestOf(op), async (r) => {
          if (schema && r.body !== undefined) {
            const sampled = fits(bodyPointer(path, method), r.body);
            expect(
              sampled.ok,
              `the sampler made a body the document refuses: ${sampled.errors}`,
            ).toBe(true);
          }
          const res = await send(path, method, r);
          const what = `${method.toUpperCase()} ${res.url.pathname}${res.url.search} ${JSON.stringify(r.body) ?? ""} -> ${res.status} ${res.text.slice(0, 300)}`;
          expect(res.status, what).not.toBe(400);
          expect(res.status, what).toBeLessThan(500);
          expect(Object.keys(op.responses), `${what}: not a documented status`).toContain(
            String(res.status),
          );
          if (res.status >= 400) {
            expect(JSON.parse(res.text), what).toEqual({
              error: { code: expect.stringMatching(/^[a-z_]+$/), message: expect.any(String) },
            });
          } else if (res.type.startsWith("application/json")) {
            const pointer = `/paths/${pointerPart(path)}/${method}/responses/${res.status}/content/application~1json/schema`;
            const answer = fits(pointer, JSON.parse(res.text));
            expect(answer.ok, `${what}: ${answer.errors}`).toBe(true);
          }
          if (method === "delete" && res.status < 300) await fixtures(); // it may have deleted them
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
    },
    60_000,
  );
});

// --- Each rule, broken once -----------------------------------------------------------------------

const SUB = `/v1/channels/${CHANNEL}/subscriptions`;
const SECRET = `whsec_${btoa("k".repeat(32))}`;
const ID_PAST_64_BITS = "18446744073709551616-0";

interface Broken {
  rule: string;
  path: string; // the document's path
  method: string;
  url: string;
  body?: unknown;
  query?: Record<string, string>;
  message: string; // what the 400 says
}

const BROKEN: Broken[] = [
  {
    rule: "a publish gives data or messages, not both",
    ...at("post", "/v1/channels/{channel}/messages", `/v1/channels/${CHANNEL}/messages`),
    body: { data: 1, messages: [{ data: 2 }] },
    message: 'body: give either "data" (and optionally "type") or "messages"',
  },
  {
    rule: "a publish gives data or messages, not neither",
    ...at("post", "/v1/channels/{channel}/messages", `/v1/channels/${CHANNEL}/messages`),
    body: { type: "order.created" },
    message: "body.data: is required",
  },
  {
    rule: "a message gives delayMs or notBefore, not both",
    ...at("post", "/v1/channels/{channel}/messages", `/v1/channels/${CHANNEL}/messages`),
    body: { data: 1, delayMs: 1000, notBefore: "2020-01-01T00:00:00Z" },
    message: 'body: give "delayMs" or "notBefore", not both',
  },
  {
    rule: "a batch gives delayMs or notBefore, not both",
    ...at("post", "/v1/channels/{channel}/messages", `/v1/channels/${CHANNEL}/messages`),
    body: { messages: [{ data: 1 }], delayMs: 1000, notBefore: "2020-01-01T00:00:00Z" },
    message: 'body: give "delayMs" or "notBefore", not both',
  },
  {
    rule: "a delay is at most 7 days",
    ...at("post", "/v1/channels/{channel}/messages", `/v1/channels/${CHANNEL}/messages`),
    body: { data: 1, delayMs: 604_800_001 },
    message: "body.delayMs:",
  },
  {
    rule: "a change changes at least one field",
    ...at("patch", "/v1/channels/{channel}/subscriptions/{name}", `${SUB}/push`),
    body: {},
    message: "body: give at least one field to change",
  },
  {
    rule: "a push subscription has a url",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new" },
    message: "body.url: is required for a push subscription",
  },
  {
    rule: "a pull subscription has no url",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", mode: "pull", url: DEAD_URL },
    message: "body: a pull subscription has no url",
  },
  {
    rule: "a flow key comes with a rate, a parallelism or both",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: DEAD_URL, flowKey: "api.example.com" },
    message: "body.flowKey: give flowRate, flowParallelism or both with it",
  },
  {
    rule: "a flow rate comes with a flow key",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: DEAD_URL, flowRate: 5 },
    message: "body.flowRate: needs a flowKey to share it under",
  },
  {
    rule: "a flow parallelism comes with a flow key",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: DEAD_URL, flowParallelism: 2 },
    message: "body.flowParallelism: needs a flowKey to share it under",
  },
  {
    rule: "a pull subscription has no flow key",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", mode: "pull", flowKey: "api.example.com", flowRate: 5 },
    message: "body: a pull subscription has no flow key",
  },
  {
    rule: "a pull subscription has no secret",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", mode: "pull", secret: SECRET },
    message: "body: a pull subscription signs nothing",
  },
  {
    rule: "mode is push or pull",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", mode: "stream", url: DEAD_URL },
    message: 'body: "mode" must be "push"',
  },
  {
    rule: "from is not empty",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: DEAD_URL, from: "" },
    message: "body.from: must be",
  },
  {
    rule: "a replay starts at an earlier point, never at latest",
    ...at("post", "/v1/channels/{channel}/subscriptions/{name}/replay", `${SUB}/push/replay`),
    body: { from: "latest" },
    message: "body.from: must be",
  },
  {
    rule: "a secret is not empty",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: DEAD_URL, secret: "" },
    message: "body.secret: must be whsec_",
  },
  {
    rule: "a secret holds 24 to 64 bytes",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: DEAD_URL, secret: `whsec_${btoa("k".repeat(65))}` },
    message: "body.secret: must be whsec_",
  },
  {
    rule: "a url is http(s)",
    ...at("post", "/v1/channels/{channel}/subscriptions", SUB),
    body: { name: "new", url: "ftp://127.0.0.1/" },
    message: "body.url: must be an http(s) URL",
  },
  {
    rule: "an API key's scopes do not repeat",
    ...at("post", "/v1/keys", "/v1/keys"),
    body: { name: "twice", scopes: ["read", "read"] },
    message: "body.scopes: must not repeat a scope",
  },
  {
    rule: "an id in a body fits 64 bits",
    ...at("post", "/v1/channels/{channel}/subscriptions/{name}/ack", `${SUB}/pull/ack`),
    body: { ids: ["1-0", ID_PAST_64_BITS] },
    message: "body.ids[1]: must be a stream id whose parts are each at most 18446744073709551615",
  },
  {
    rule: "a consumer is not the push deliverer",
    ...at("post", "/v1/channels/{channel}/subscriptions/{name}/pull", `${SUB}/pull/pull`),
    body: { consumer: "deliverer" },
    message: "body.consumer:",
  },
  {
    rule: "an id in a query fits 64 bits",
    ...at("get", "/v1/channels/{channel}/messages", `/v1/channels/${CHANNEL}/messages`),
    query: { after: ID_PAST_64_BITS },
    message: "query.after: must be a stream id whose parts are each at most",
  },
  {
    rule: "a cron expression has 5 fields",
    ...at("post", "/v1/schedules", "/v1/schedules"),
    body: { name: "new", channel: CHANNEL, cron: "0 * * * * *", message: { data: 1 } },
    message: "body.cron: must be a 5-field cron expression",
  },
  {
    rule: "a cron expression runs some day",
    ...at("post", "/v1/schedules", "/v1/schedules"),
    body: { name: "new", channel: CHANNEL, cron: "0 0 30 2 *", message: { data: 1 } },
    message: "body.cron: never matches a date",
  },
  {
    rule: "a time zone is an IANA name",
    ...at("patch", "/v1/schedules/{name}", "/v1/schedules/push"),
    body: { timezone: "UTC+2" },
    message: "body.timezone: must be an IANA time zone name",
  },
  {
    rule: "a schedule's change changes at least one field",
    ...at("patch", "/v1/schedules/{name}", "/v1/schedules/push"),
    body: {},
    message: "body: give at least one field to change",
  },
];

function at(method: string, path: string, url: string) {
  return { method, path, url };
}

/** The document's verdict on the broken part of the request (its body, or its query's value). */
function documentVerdict(b: Broken) {
  if (b.query === undefined) return fits(bodyPointer(b.path, b.method), b.body);
  const [name, value] = Object.entries(b.query)[0]!;
  const index = document.paths[b.path]![b.method]!.parameters!.findIndex((p) => p.name === name);
  return fits(`/paths/${pointerPart(b.path)}/${b.method}/parameters/${index}/schema`, value);
}

describe("each rule the API enforces is the document's, and broken answers 400", () => {
  it.each(BROKEN)("$rule", async (b) => {
    expect(documentVerdict(b).ok, "the document accepts what the API refuses").toBe(false);
    const query = b.query ? `?${new URLSearchParams(b.query)}` : "";
    const res = await stack.api(`${b.url}${query}`, {
      method: b.method.toUpperCase(),
      ...(b.body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(b.body) }),
    });
    expect(res.status).toBe(400);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("invalid_request");
    expect(error.message).toContain(b.message);
  });
});

describe("rules that depend on what is stored answer 409, as documented", () => {
  it("refuses a url for a pull subscription with 409 not_push_subscription", async () => {
    const body = { url: DEAD_URL };
    const path = "/v1/channels/{channel}/subscriptions/{name}";
    expect(fits(bodyPointer(path, "patch"), body).ok).toBe(true);
    expect(Object.keys(document.paths[path]!.patch!.responses)).toContain("409");
    const res = await stack.api(`${SUB}/pull`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "not_push_subscription",
    );
  });

  it("refuses a flow key left without limits with 409 flow_incomplete", async () => {
    // A rate with the key removed: whatever the samples above left stored.
    const body = { flowKey: null, flowRate: 5 };
    const path = "/v1/channels/{channel}/subscriptions/{name}";
    expect(fits(bodyPointer(path, "patch"), body).ok).toBe(true);
    const res = await stack.api(`${SUB}/push`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(409);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("flow_incomplete");
    expect(error.message).toContain("flowRate: needs a flowKey");
  });

  it("refuses a name already taken on the channel with 409 subscription_exists", async () => {
    const body = { name: "pull", mode: "pull" };
    const path = "/v1/channels/{channel}/subscriptions";
    expect(fits(bodyPointer(path, "post"), body).ok).toBe(true);
    expect(Object.keys(document.paths[path]!.post!.responses)).toContain("409");
    const res = await stack.post(SUB, body);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      "subscription_exists",
    );
  });

  it("refuses a schedule name already taken with 409 schedule_exists", async () => {
    const body = { name: "push", channel: CHANNEL, cron: "* * * * *", message: { data: 1 } };
    expect(fits(bodyPointer("/v1/schedules", "post"), body).ok).toBe(true);
    expect(Object.keys(document.paths["/v1/schedules"]!.post!.responses)).toContain("409");
    const res = await stack.post("/v1/schedules", body);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("schedule_exists");
  });
});
