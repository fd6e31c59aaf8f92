// Production's webhook target policy on the real stack: both switches unset (an empty variable is
// unset), so only public https URLs are accepted. The URLs accepted here are never contacted:
// nothing is published, so no delivery has anything to send.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Keyspace, keyspace } from "../helpers/keyspace.ts";
import { deliveriesScheduled, settled, until } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    vars: { ALLOW_HTTP_WEBHOOKS: "", ALLOW_PRIVATE_WEBHOOKS: "", KICK_ON_PUBLISH: "false" },
  });
});
afterAll(() => stack?.stop());

const CHANNEL = "targets";
const create = (name: string, url: string) =>
  stack.post(`/v1/channels/${CHANNEL}/subscriptions`, { name, url });
const patch = (name: string, body: unknown) =>
  stack.api(`/v1/channels/${CHANNEL}/subscriptions/${name}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
// The health probe's key is written by GET /health only; nothing here asks for it.
const ignored = (key: string) => key === stack.keys.health();
const everything = () => keyspace(stack.redis, ignored);

/** Expects 400 url_not_allowed and returns its message; nothing may have been written. */
async function expectRefused(res: Response, before: Keyspace) {
  expect(res.status).toBe(400);
  const { error } = (await res.json()) as { error: { code: string; message: string } };
  expect(error.code).toBe("url_not_allowed");
  expect(await everything()).toEqual(before);
  return error.message;
}

describe("webhook targets under production defaults", () => {
  it("accepts a public https URL on create and on PATCH", async () => {
    const created = await create("public", "https://example.com/hook");
    expect(created.status, await created.clone().text()).toBe(201);
    const patched = await patch("public", { url: "https://hooks.example.org/in" });
    expect(patched.status, await patched.clone().text()).toBe(200);
    expect(((await patched.json()) as { url: string }).url).toBe("https://hooks.example.org/in");
    // A new URL wakes the subscription (nothing to send): the visit that wakes runs after the
    // answer (waitUntil) and takes its members out of {p}:due, so let it end before the next test.
    await until(
      "the visit the new URL woke is over",
      async () =>
        (await deliveriesScheduled(stack)) === 0 && (await settled(stack, CHANNEL, "public")),
    );
  });

  it("refuses an http URL, saying which variable allows it", async () => {
    const message = await expectRefused(
      await create("plain", "http://example.com/hook"),
      await everything(),
    );
    expect(message).toContain("ALLOW_HTTP_WEBHOOKS=1");
  });

  it("refuses a loopback URL, naming the host, why, and the variable", async () => {
    const message = await expectRefused(
      await create("loop", "https://127.0.0.1/hook"),
      await everything(),
    );
    expect(message).toBe(
      "the URL's host 127.0.0.1 is a loopback address; set ALLOW_PRIVATE_WEBHOOKS=1 to allow it",
    );
  });

  it.each([
    ["https://2130706433/", "loopback"],
    ["https://0x7f000001/", "loopback"],
    ["https://127.1/", "loopback"],
    ["https://0177.0.0.1/", "loopback"],
    ["https://[::ffff:127.0.0.1]/", "IPv6 form of 127.0.0.1"],
    ["https://[::1]/", "loopback"],
    ["https://0.0.0.0/", "unspecified"],
    ["https://10.0.0.8/", "private"],
    ["https://192.168.0.1/", "private"],
    ["https://169.254.10.10/", "link-local"],
    ["https://[fe80::1]/", "link-local"],
    ["https://[fd12::1]/", "unique-local"],
    ["https://224.0.0.251/", "multicast"],
    ["https://169.254.169.254/latest/meta-data/", "cloud metadata"],
    ["https://[fd00:ec2::254]/", "cloud metadata"],
    ["https://metadata.google.internal/computeMetadata/v1/", "cloud metadata"],
    ["https://localhost/", "localhost"],
    ["https://localhost./", "localhost"],
    ["https://hooks.localhost/", "localhost"],
  ])("refuses %s on create (%s)", async (url, reason) => {
    const message = await expectRefused(await create("sneaky", url), await everything());
    expect(message).toContain(reason);
  });

  it("refuses a private URL on PATCH and keeps the old one", async () => {
    expect((await create("moving", "https://example.com/moving")).status).toBe(201);
    const before = await everything();
    for (const url of ["https://[::ffff:10.0.0.1]/", "http://example.com/", "https://0x7f.1/"]) {
      await expectRefused(await patch("moving", { url }), before);
    }
    const res = await stack.api(`/v1/channels/${CHANNEL}/subscriptions/moving`);
    expect(((await res.json()) as { url: string }).url).toBe("https://example.com/moving");
  });
});

describe("webhook targets with a switch on", () => {
  let open: Stack;
  beforeAll(async () => {
    open = await startStack({ vars: { ALLOW_HTTP_WEBHOOKS: "true", ALLOW_PRIVATE_WEBHOOKS: "0" } });
  });
  afterAll(() => open?.stop());

  it("ALLOW_HTTP_WEBHOOKS=true accepts http but not a private host", async () => {
    const path = `/v1/channels/${CHANNEL}/subscriptions`;
    expect((await open.post(path, { name: "a", url: "http://example.com/" })).status).toBe(201);
    const res = await open.post(path, { name: "b", url: "http://127.0.0.1:9/" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("url_not_allowed");
  });
});
