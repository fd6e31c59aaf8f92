import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";
import { afterEach, describe, expect, it } from "vitest";
import { deliveryFixture } from "../helpers/fixture.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  getSubscription,
  pendingCount,
  publish,
  runPass,
  subscribe,
} from "../helpers/subscriptions.ts";

// What a 2xx answer means: its body is read for {"failed": [...]} whatever its content-type, and
// an answer whose body breaks off accepts nothing. Each test looks at one answer: retries are ten
// minutes away, so that no pass, however slow the machine, sends one meanwhile.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "replies",
  { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: String(10 * 60_000) } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

let raw: Server | undefined;
afterEach(async () => {
  raw?.closeAllConnections();
  await new Promise((resolve) => raw?.close(resolve) ?? resolve(null));
  raw = undefined;
});

/** An endpoint that answers 200 and starts a body it never finishes: the connection is cut. */
async function brokenEndpoint(): Promise<{ url: string; received: string[] }> {
  const received: string[] = [];
  raw = createServer(async (req, res) => {
    received.push(await text(req));
    res.writeHead(200, { "content-type": "application/json", "content-length": "100" });
    res.write('{"failed":[');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  await new Promise<void>((resolve) => raw!.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(raw.address() as AddressInfo).port}/`, received };
}

describe("a 2xx answer", () => {
  it.each([
    ["no content-type", {}],
    ["content-type text/plain", { "content-type": "text/plain" }],
  ])('lists rejected messages in {"failed"} with %s', async (_, headers) => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 3 });
    const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }]);
    receiver.respond({ status: 200, body: JSON.stringify({ failed: [ids[1]] }), headers });
    const summary = await runPass(stack);
    expect(summary).toMatchObject({ delivered: 2, retried: 1 });
    expect(await pendingCount(stack, channel, "sub")).toBe(1);
    const pending = (await stack.redis.xpending(
      stack.keys.channel(channel),
      (
        await getSubscription(stack, channel, "sub")
      ).id
        ? `sub~${(await getSubscription(stack, channel, "sub")).id}`
        : "sub",
      "-",
      "+",
      10,
    )) as [string][];
    expect(pending.map(([id]) => id)).toEqual([ids[1]]);
  });

  it("whose body breaks off accepts nothing: the batch is retried, the error says why", async () => {
    const endpoint = await brokenEndpoint();
    await subscribe(stack, channel, {
      name: "sub",
      url: endpoint.url,
      batchSize: 2,
      timeoutMs: 1000,
    });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    const summary = await runPass(stack);
    expect(endpoint.received).toHaveLength(1);
    expect(summary.delivered).toBe(0);
    expect(await pendingCount(stack, channel, "sub")).toBe(2);
    const view = await getSubscription(stack, channel, "sub");
    // A cut reads as an error, or (where the runtime keeps waiting on the cut body, as under
    // wrangler's test harness) as the timeout: a failure either way.
    expect(view.lastError).toMatch(
      /^HTTP 200, then (reading the reply failed|timeout after 1000 ms)/,
    );
    expect(view.consecutiveFailures).toBe(1);
  });

  it("whose body takes longer than timeoutMs accepts nothing", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, timeoutMs: 300 });
    await publish(stack, channel, [{ data: 1 }]);
    receiver.respond({ status: 200, delayMs: 1_000 });
    await runPass(stack);
    expect(await pendingCount(stack, channel, "sub")).toBe(1);
    expect((await getSubscription(stack, channel, "sub")).lastError).toBe("timeout after 300 ms");
  });
});
