import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../functions/app.ts";
import { rawRequest } from "../helpers/raw-request.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: { MAX_MESSAGE_BYTES: "1000" } });
});
afterAll(() => stack?.stop());

const CHANNEL = "errors";
const PATH = `/v1/channels/${CHANNEL}/messages`;
let lengthBefore: number;

// Every rejected request must leave the stream exactly as it was.
beforeEach(async () => {
  await stack.post(PATH, { data: "seed" });
  lengthBefore = await stack.redis.xlen(stack.keys.channel(CHANNEL));
});

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
  expect(await stack.redis.xlen(stack.keys.channel(CHANNEL))).toBe(lengthBefore);
  return body.error.message;
}

describe("authentication", () => {
  it("401s without a token", async () => {
    const res = await fetch(`${stack.url}${PATH}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ data: 1 }),
    });
    await expectError(res, 401, "unauthorized");
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
  });

  it("401s with a wrong token", async () => {
    const res = await stack.post(PATH, { data: 1 }, { authorization: "Bearer wrong-token" });
    await expectError(res, 401, "unauthorized");
  });

  it("401s with a wrong token of the same length as the real one", async () => {
    const wrong = `${API_TOKEN.slice(0, -1)}${API_TOKEN.endsWith("x") ? "y" : "x"}`;
    expect(wrong).toHaveLength(API_TOKEN.length);
    const res = await stack.post(PATH, { data: 1 }, { authorization: `Bearer ${wrong}` });
    await expectError(res, 401, "unauthorized");
  });

  it("401s with a malformed Authorization header", async () => {
    const res = await stack.post(PATH, { data: 1 }, { authorization: "Basic dXNlcjpwYXNz" });
    await expectError(res, 401, "unauthorized");
  });

  it("401s on reads too", async () => {
    const res = await fetch(`${stack.url}/v1/channels`);
    await expectError(res, 401, "unauthorized");
  });
});

describe("invalid requests", () => {
  it("400s on malformed JSON", async () => {
    const res = await stack.api(PATH, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"data": ',
    });
    await expectError(res, 400, "invalid_json");
  });

  it("400s naming the field when data is missing", async () => {
    const message = await expectError(
      await stack.post(PATH, { type: "a.b" }),
      400,
      "invalid_request",
    );
    expect(message).toContain("body.data");
  });

  it("400s naming the message when a batch entry's type is invalid", async () => {
    const messages = [{ data: 1 }, { data: 2, type: "has space" }];
    const message = await expectError(await stack.post(PATH, { messages }), 400, "invalid_request");
    expect(message).toContain("body.messages[1].type");
  });

  it("400s when both data and messages are given", async () => {
    await expectError(
      await stack.post(PATH, { data: 1, messages: [{ data: 2 }] }),
      400,
      "invalid_request",
    );
  });

  it("400s on an empty batch", async () => {
    await expectError(await stack.post(PATH, { messages: [] }), 400, "invalid_request");
  });

  it("400s on unknown fields", async () => {
    await expectError(await stack.post(PATH, { data: 1, tpye: "x" }), 400, "invalid_request");
  });

  it("400s on an invalid channel name", async () => {
    for (const name of ["-starts-with-dash", "has:colon", "a".repeat(129), "sp%20ace"]) {
      const res = await stack.post(`/v1/channels/${name}/messages`, { data: 1 });
      expect(res.status, name).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
        "path.channel",
      );
    }
  });

  it("400s on an invalid Idempotency-Key", async () => {
    const res = await stack.post(PATH, { data: 1 }, { "idempotency-key": "x".repeat(256) });
    await expectError(res, 400, "invalid_request");
  });

  it("400s on a history cursor that is not a stream id", async () => {
    const res = await stack.api(`${PATH}?after=yesterday`);
    expect(res.status).toBe(400);
  });

  // Redis stream ids are two unsigned 64-bit numbers: 18446744073709551615 is the largest part.
  it.each([
    ["ms", "18446744073709551616-0"],
    ["seq", "0-18446744073709551616"],
    ["ms", "99999999999999999999-0"],
  ])(
    "400s naming query.after on a history cursor whose %s part is past 2^64 - 1 (%s)",
    async (_part, id) => {
      const message = await expectError(
        await stack.api(`${PATH}?after=${id}`),
        400,
        "invalid_request",
      );
      expect(message).toContain("query.after");
    },
  );

  it("reads history after a cursor whose parts are at Redis' largest", async () => {
    for (const id of ["18446744073709551615-0", "0-18446744073709551615"]) {
      const res = await stack.api(`${PATH}?after=${id}`);
      expect(res.status, id).toBe(200);
    }
  });
});

describe("sizes and types", () => {
  it("413s when data is over MAX_MESSAGE_BYTES", async () => {
    const message = await expectError(
      await stack.post(PATH, { data: "x".repeat(1000) }),
      413,
      "payload_too_large",
    );
    expect(message).toContain("MAX_MESSAGE_BYTES");
  });

  it("413s when one message of a batch is too big, and writes none of them", async () => {
    const messages = [{ data: "small" }, { data: "x".repeat(2000) }];
    const message = await expectError(
      await stack.post(PATH, { messages }),
      413,
      "payload_too_large",
    );
    expect(message).toContain("messages[1].data");
  });

  it("accepts data exactly at the limit", async () => {
    // "x" * 998 plus two quotes is 1000 bytes of JSON.
    const res = await stack.post(PATH, { data: "x".repeat(998) });
    expect(res.status).toBe(201);
  });

  it("413s when the body is over 1 MiB", async () => {
    const res = await stack.post(PATH, {
      messages: Array.from({ length: 1100 }, () => ({ data: "y".repeat(990) })),
    });
    await expectError(res, 413, "payload_too_large");
  });

  // Every route of the OpenAPI document, whether it reads a body or not, with its path parameters
  // filled in (they need not exist: the size is judged first).
  const routes = Object.entries(
    createApp(() => {
      throw new Error("not called: the document is generated without requests");
    }).getOpenAPI31Document({ openapi: "3.1.0", info: { title: "", version: "" } }).paths ?? {},
  ).flatMap(([path, operations]) =>
    Object.keys(operations).map((method) => ({
      method: method.toUpperCase(),
      path: path.replace("{channel}", CHANNEL).replace("{name}", "sub"),
    })),
  );
  const overOneMiB = `{"data":"${"z".repeat(1024 * 1024)}"}`;

  it.each(routes)("413s on a body over 1 MiB on $method $path", async ({ method, path }) => {
    const before = await stack.redis.dbsize();
    // workerd hands the Worker no body at all for a chunked GET or DELETE (none, or an empty
    // one), so only a Content-Length can tell of one there.
    const chunked = method === "POST" || method === "PATCH" ? [64 * 1024] : [];
    for (const chunkBytes of [undefined, ...chunked]) {
      const res = await rawRequest(`${stack.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${API_TOKEN}`, "content-type": "application/json" },
        body: overOneMiB,
        chunkBytes,
      });
      const how = chunkBytes ? "chunked" : "with Content-Length";
      expect(res.status, how).toBe(413);
      expect(res.headers["content-type"], how).toMatch(/^application\/json/);
      expect(JSON.parse(res.text).error.code, how).toBe("payload_too_large");
    }
    expect(await stack.redis.xlen(stack.keys.channel(CHANNEL))).toBe(lengthBefore);
    expect(await stack.redis.dbsize()).toBe(before);
  });

  it("answers 401 to a client still sending its body in chunks, not a reset connection", async () => {
    for (const path of ["/v1/deliver", PATH]) {
      const res = await rawRequest(`${stack.url}${path}`, {
        method: "POST",
        headers: { authorization: "Bearer wrong-token", "content-type": "application/json" },
        body: `{"data":"${"x".repeat(20_000)}"}`,
        chunkBytes: 7,
      });
      expect(res.status, path).toBe(401);
      expect(JSON.parse(res.text).error.code, path).toBe("unauthorized");
    }
  });

  it("415s on a body that is not JSON", async () => {
    const res = await stack.api(PATH, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ data: 1 }),
    });
    await expectError(res, 415, "unsupported_media_type");
  });

  it("415s on a body without a content type", async () => {
    const res = await stack.api(PATH, { method: "POST", body: JSON.stringify({ data: 1 }) });
    await expectError(res, 415, "unsupported_media_type");
  });
});

describe("routing", () => {
  it("404s on an unknown route", async () => {
    await expectError(await stack.api("/v1/nothing-here"), 404, "not_found");
  });

  it("405s on a known path with the wrong method, listing the allowed ones", async () => {
    const res = await stack.api(PATH, { method: "DELETE" });
    await expectError(res, 405, "method_not_allowed");
    expect(res.headers.get("allow")).toBe("GET, HEAD, POST");
  });

  it("404s on a channel that does not exist", async () => {
    await expectError(await stack.api("/v1/channels/never-published"), 404, "channel_not_found");
    await expectError(
      await stack.api("/v1/channels/never-published/messages"),
      404,
      "channel_not_found",
    );
  });
});
