// Bad input, generated: every route of the OpenAPI document gets random and mutated paths, path
// parameters, queries, headers and bodies (fast-check), sent over real HTTP to the Worker with the
// API token. Whatever arrives, the API never answers 5xx; every 4xx is {"error":{"code","message"}};
// and a rejected request writes nothing (the whole keyspace, key by key, before and after).
//
// FUZZ_RUNS sets the runs per route (default 30, about 30 s for the file), FUZZ_SEED the seed;
// fast-check prints the seed and the smallest failing request when a property fails.

import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { changedKeys, keyspace, quiet } from "../helpers/keyspace.ts";
import { type RawResponse, rawRequest } from "../helpers/raw-request.ts";
import { anyDeliverer } from "../helpers/schedule.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 30);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

let stack: Stack;
beforeAll(async () => {
  // No kick on publish: an accepted publish starts no delivery behind the test's back.
  stack = await startStack({ vars: { KICK_ON_PUBLISH: "false" } });
  await fixtures();
  await quiet(stack.redis, ignored, delivering);
});
afterAll(() => stack?.stop());

// What the generated requests mostly aim at: a channel with messages, and a paused subscription
// with dead letters (its URL refuses connections, and one attempt is all it gets), and a schedule.
const CHANNEL = "fx";
const SUB = "sub";
const DEAD_URL = "http://127.0.0.1:9/";

async function fixtures() {
  // A schedule named like the subscription, so that /v1/schedules/{name} finds one.
  if ((await stack.api(`/v1/schedules/${SUB}`)).status === 404) {
    const schedule = { name: SUB, channel: CHANNEL, cron: "0 9 * * *", message: { data: 1 } };
    expect((await stack.post("/v1/schedules", schedule)).status).toBe(201);
  }
  if ((await stack.api(`/v1/channels/${CHANNEL}/subscriptions/${SUB}`)).status === 200) return;
  await subscribe(stack, CHANNEL, { name: SUB, url: DEAD_URL, maxAttempts: 1, from: "earliest" });
  await publish(stack, CHANNEL, [{ data: 1, type: "a.b" }, { data: { x: [1, 2] } }]);
  await runPass(stack);
  const paused = await stack.api(`/v1/channels/${CHANNEL}/subscriptions/${SUB}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ paused: true }),
  });
  expect(paused.status).toBe(200);
}

// The health probe writes its key on every GET /health, by design.
const ignored = (key: string) => key === stack.keys.health();
// Someone is delivering: a deliverer woken by an accepted request (resume, replay, redrive).
const delivering = () => anyDeliverer(stack);

// --- The routes, from the same document GET /openapi.json serves --------------------------------

interface Operation {
  parameters?: { name: string; in: "path" | "query" | "header" }[];
  requestBody?: unknown;
}
const document = createApp(() => {
  throw new Error("not called: the document is generated without requests");
}).getOpenAPI31Document({ openapi: "3.1.0", info: { title: "", version: "" } });
const routes = Object.entries(document.paths ?? {}).flatMap(([path, operations]) =>
  Object.entries(operations as Record<string, Operation>).map(([method, op]) => ({
    method: method.toUpperCase(),
    path,
    query: (op.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name),
    headers: (op.parameters ?? []).filter((p) => p.in === "header").map((p) => p.name),
    hasBody: op.requestBody !== undefined,
  })),
);
type Route = (typeof routes)[number];

// A valid body per route that takes one: what the mutations start from.
const VALID_BODIES: Record<string, unknown[]> = {
  "POST /v1/channels/{channel}/messages": [
    { data: { orderId: 42 }, type: "order.created" },
    { messages: [{ data: 1 }, { data: "two", type: "b" }] },
  ],
  "PATCH /v1/channels/{channel}": [{ retention: { maxAgeMs: 60_000, maxMessages: null } }],
  "POST /v1/channels/{channel}/subscriptions": [
    {
      name: "fz",
      url: DEAD_URL,
      from: "latest",
      batchSize: 5,
      maxAttempts: 1,
      types: ["a.*"],
      timeoutMs: 1000,
      maxConcurrency: 2,
      flowKey: "fz.example.com",
      flowParallelism: 2,
    },
  ],
  "PATCH /v1/channels/{channel}/subscriptions/{name}": [
    {
      url: DEAD_URL,
      batchSize: 2,
      maxAttempts: 1,
      types: null,
      timeoutMs: 500,
      maxConcurrency: 1,
      flowKey: "fz.example.com",
      flowRate: 5,
      paused: true,
    },
  ],
  "POST /v1/channels/{channel}/subscriptions/{name}/replay": [{ from: "earliest" }],
  "POST /v1/channels/{channel}/subscriptions/{name}/dead-letters/redrive": [{ ids: ["1-0"] }],
  "POST /v1/keys": [{ name: "fz", scopes: ["read"], channels: ["a.*"] }],
  "POST /v1/channels/{channel}/subscriptions/{name}/pull": [{ max: 5, visibilityTimeoutMs: 1000 }],
  "POST /v1/channels/{channel}/subscriptions/{name}/ack": [{ ids: ["1-0"] }],
  "POST /v1/channels/{channel}/subscriptions/{name}/nack": [{ ids: ["1-0"], delayMs: 0 }],
  "POST /v1/channels/{channel}/subscriptions/{name}/extend": [
    { ids: ["1-0"], visibilityTimeoutMs: 1000 },
  ],
  "POST /v1/schedules": [
    {
      name: "fz",
      channel: CHANNEL,
      cron: "*/5 * * * *",
      timezone: "Europe/Paris",
      message: { type: "a.b", data: { x: [1] } },
      paused: false,
    },
  ],
  "PATCH /v1/schedules/{name}": [
    { channel: CHANNEL, cron: "0 * * * *", timezone: "UTC", message: { data: 2 }, paused: true },
  ],
};

// --- Arbitraries ----------------------------------------------------------------------------------

const TRICKY_SEGMENTS = [
  "..",
  ".",
  "%2e%2e",
  "%00",
  "%2F",
  "%ZZ",
  "%",
  "%F0%9F%92%A9",
  "%C0%AF",
  "a".repeat(129),
  "a".repeat(5000),
  "_",
  "-a",
  "a:b",
  "a*",
  "%20",
  "~retention",
];
const segment = (fixture: string) =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant(fixture) },
    { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,12}$/) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 40 }).map(encodeURIComponent) },
    { weight: 2, arbitrary: fc.constantFrom(...TRICKY_SEGMENTS) },
  );

const STREAM_IDS = ["0-0", "1-0", "18446744073709551615-18446744073709551615"];
const queryValue = fc.oneof(
  fc.constantFrom(
    "",
    "0",
    "1",
    "-1",
    "1000",
    "1001",
    "1e3",
    "0x10",
    "NaN",
    "Infinity",
    "true",
    "false",
    "18446744073709551616-0",
    "99999999999999999999-99999999999999999999",
    "1-",
    "-",
    ...STREAM_IDS,
  ),
  fc.string({ unit: "binary", maxLength: 30 }),
);
const query = (route: Route) =>
  fc
    .array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom(...route.query, "limit", "after", "force"),
          fc.string({ maxLength: 8 }),
        ),
        queryValue,
      ),
      { maxLength: 4 },
    )
    .map((pairs) =>
      pairs.length === 0
        ? ""
        : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&")}`,
    );

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "APPLICATION/JSON",
  "application/vnd.api+json",
  "application/json; charset=utf-8; foo",
  "text/plain",
  "text/json",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/octet-stream",
  "",
  "json",
  "*/*",
];
const printable = fc.stringMatching(/^[\x20-\x7e]{0,300}$/);
const headers = (route: Route) =>
  fc.record(
    {
      authorization: fc.oneof(
        { weight: 12, arbitrary: fc.constant(`Bearer ${API_TOKEN}`) },
        { weight: 1, arbitrary: fc.constantFrom("Bearer", "Bearer ", "Basic abc", "bearer x") },
        { weight: 1, arbitrary: printable.map((s) => `Bearer ${s}`) },
      ),
      "content-type": fc.oneof(
        { weight: 4, arbitrary: fc.constant("application/json") },
        { weight: 3, arbitrary: fc.constantFrom(...CONTENT_TYPES) },
        { weight: 1, arbitrary: printable },
      ),
      "idempotency-key": fc.oneof(printable, fc.constant("k".repeat(256))),
      "x-extra": printable,
      ...Object.fromEntries(route.headers.map((name) => [name, printable])),
    },
    { requiredKeys: ["authorization"] },
  );

/** A valid body with one thing broken: a field dropped, retyped, added or the whole reshaped. */
const mutated = (valid: unknown) => {
  const fields = Object.keys(valid as object);
  const field = fields.length > 0 ? fc.constantFrom(...fields) : fc.string({ maxLength: 5 });
  return fc.oneof(
    field.map((k) => {
      const { [k]: _dropped, ...rest } = valid as Record<string, unknown>;
      return rest;
    }),
    fc.tuple(field, fc.jsonValue({ maxDepth: 3 })).map(([k, v]) => ({
      ...(valid as object),
      [k]: v,
    })),
    fc.tuple(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })).map(([k, v]) => ({
      ...(valid as object),
      [k]: v,
    })),
    fc.constant([valid]),
    fc.constant({ ...(valid as object), __proto__: { polluted: true } }),
  );
};

const RAW_BODIES = [
  "",
  " ",
  "null",
  "[]",
  "{}",
  "{",
  '{"data":',
  "\u0000",
  '"\\ud800"',
  '{"data":"\\ud800"}',
  '{"data":1e400}',
  '{"data":-0}',
  '{"data":1,"data":2}',
  `${"[".repeat(5000)}${"]".repeat(5000)}`,
  `{"data":${"[".repeat(5000)}${"]".repeat(5000)}}`,
  '{"__proto__":{"x":1},"data":1}',
  '{"constructor":{"prototype":{}}}',
];
const body = (route: Route) => {
  const valid = VALID_BODIES[`${route.method} ${route.path}`] ?? [{}];
  return fc.oneof(
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.constantFrom(...RAW_BODIES) },
    { weight: 1, arbitrary: fc.constantFrom(...valid).map((v) => JSON.stringify(v)) },
    {
      weight: 6,
      arbitrary: fc
        .constantFrom(...valid)
        .chain(mutated)
        .map((v) => JSON.stringify(v)),
    },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  );
};

// Valid by default; each request breaks up to two of its parts (or none), so that most reach
// past validation into the route, and the rest break it in every way at once.
const VALID_QUERY: Record<string, fc.Arbitrary<string>> = {
  limit: fc.integer({ min: 1, max: 1000 }).map(String),
  after: fc.constantFrom(...STREAM_IDS),
  force: fc.constantFrom("true", "false"),
};
const validQuery = (route: Route) =>
  fc
    .record(Object.fromEntries(route.query.map((name) => [name, VALID_QUERY[name]!])), {
      requiredKeys: [],
    })
    .map((pairs) => {
      const entries = Object.entries(pairs).filter(
        (e): e is [string, string] => e[1] !== undefined,
      );
      return entries.length === 0 ? "" : `?${new URLSearchParams(entries)}`;
    });
const validHeaders = (route: Route) =>
  fc.record(
    {
      authorization: fc.constant(`Bearer ${API_TOKEN}`),
      "content-type": fc.constant("application/json"),
      "idempotency-key": fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
    },
    { requiredKeys: route.hasBody ? ["authorization", "content-type"] : ["authorization"] },
  );
const validBody = (route: Route) => {
  const valid = VALID_BODIES[`${route.method} ${route.path}`];
  return valid ? fc.constantFrom(...valid).map((v) => JSON.stringify(v)) : fc.constant(undefined);
};

const PARTS = ["path", "query", "headers", "body"] as const;
const request = (route: Route) =>
  fc.subarray([...PARTS], { maxLength: 2 }).chain((broken) =>
    fc.record({
      path: fc
        .tuple(
          broken.includes("path") ? segment(CHANNEL) : fc.constant(CHANNEL),
          broken.includes("path") ? segment(SUB) : fc.constant(SUB),
        )
        .map(([channel, name]) => route.path.replace("{channel}", channel).replace("{name}", name)),
      query: broken.includes("query") ? query(route) : validQuery(route),
      headers: broken.includes("headers") ? headers(route) : validHeaders(route),
      body: broken.includes("body") ? body(route) : validBody(route),
      chunked: fc.boolean(),
    }),
  );

// --- The checks -------------------------------------------------------------------------------

interface Sent {
  path: string;
  query: string;
  headers: Partial<Record<string, string>>;
  body: string | undefined;
  chunked: boolean;
}

async function send(method: string, r: Sent): Promise<RawResponse> {
  return rawRequest(`${stack.url}${r.path}${r.query}`, {
    method,
    headers: Object.fromEntries(
      Object.entries(r.headers).filter((e): e is [string, string] => e[1] !== undefined),
    ),
    ...(r.body === undefined ? {} : { body: r.body }),
    ...(r.chunked && r.body !== undefined ? { chunkBytes: 7 } : {}),
  });
}

/** Sends one request and checks the three rules; after an accepted one, waits for what it set going. */
async function check(method: string, r: Sent) {
  const before = await keyspace(stack.redis, ignored);
  const res = await send(method, r);
  const what = `${method} ${r.path}${r.query} -> ${res.status} ${res.text.slice(0, 300)}`;
  expect(res.status, what).toBeLessThan(500);
  if (res.status < 400) {
    if (method === "DELETE") await fixtures(); // it may have deleted them
    await quiet(stack.redis, ignored, delivering);
    return;
  }
  if (method !== "HEAD") {
    expect(res.headers["content-type"], what).toMatch(/^application\/json/);
    const parsed = JSON.parse(res.text) as unknown;
    expect(parsed, what).toEqual({
      error: { code: expect.stringMatching(/^[a-z_]+$/), message: expect.any(String) },
    });
    expect(Object.keys((parsed as { error: object }).error), what).toEqual(["code", "message"]);
  }
  expect(changedKeys(before, await keyspace(stack.redis, ignored)), `${what}: wrote`).toEqual([]);
}

describe("bad input on every route", () => {
  it("covers every route of the served document, with a valid body for each that takes one", async () => {
    const served = (await (await stack.api("/openapi.json")).json()) as typeof document;
    expect(Object.keys(served.paths ?? {}).sort()).toEqual(
      Object.keys(document.paths ?? {}).sort(),
    );
    const withBody = routes.filter((r) => r.hasBody).map((r) => `${r.method} ${r.path}`);
    expect(withBody.sort()).toEqual(Object.keys(VALID_BODIES).sort());
  });

  it.each(routes)(
    "$method $path: never 5xx, errors as JSON, nothing written when refused",
    async (route) => {
      await fc.assert(
        fc.asyncProperty(request(route), (r) => check(route.method, r)),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      );
    },
    60_000,
  );

  it("unknown paths and other methods", async () => {
    const methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"];
    const anyRoute = fc.constantFrom(...routes);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...methods),
        anyRoute.chain((route) => request(route)),
        fc.array(segment("x"), { maxLength: 4 }),
        (method, r, extra) =>
          check(method, {
            ...r,
            path: extra.length > 0 ? `${r.path}/${extra.join("/")}` : r.path,
          }),
      ),
      { numRuns: RUNS * 2, seed: SEED, endOnFailure: true },
    );
  }, 60_000);
});
