// The README's Cloudflare Workers example (client/examples/worker.ts), built by wrangler and run
// in workerd beside the stack: it publishes through @streamhook/client, verifies the Worker's
// webhooks with Web Crypto inside workerd, and answers {"failed"} for the orders its downstream
// refused, which streamhook then retries, alone.

import { join } from "node:path";
import { createStreamhookClient } from "@streamhook/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestHarness, type TestHarness } from "wrangler";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled } from "../helpers/schedule.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ROOT = join(import.meta.dirname, "..", "..");

let stack: Stack;
let downstream: TestReceiver;
let example: TestHarness;
let exampleUrl: string;
beforeAll(async () => {
  stack = await startStack({ vars: { RETRY_BASE_MS: "1000" } });
  downstream = await startReceiver();
  example = createTestHarness({
    root: ROOT,
    workers: [
      {
        config: {
          name: "client-example",
          main: join(ROOT, "client", "examples", "worker.ts"),
          compatibility_date: "2026-11-01",
          // The package by its name, from its source (vitest.config.ts does the same).
          alias: {
            "@streamhook/client": join(ROOT, "client", "index.ts"),
          },
          vars: {
            STREAMHOOK_URL: stack.url,
            API_TOKEN,
            WEBHOOK_SECRETS: SECRET,
            ORDERS_URL: downstream.url,
          },
        },
      },
    ],
  });
  exampleUrl = (await example.listen()).url.href.replace(/\/$/, "");
});
afterAll(async () => {
  await example?.close();
  await downstream?.close();
  await stack?.stop();
});

describe("the Workers example", () => {
  it("publishes, verifies deliveries in workerd, and has its refused orders retried alone", async () => {
    const streamhook = createStreamhookClient({ baseUrl: stack.url, token: API_TOKEN });
    await streamhook.subscriptions.create("orders", {
      name: "shop",
      url: `${exampleUrl}/webhooks/streamhook`,
      secret: SECRET,
    });
    // The downstream refuses order 2 the first time it sees it.
    let refused = false;
    downstream.respond((req) => {
      const { data } = JSON.parse(req.raw) as { data: { orderId: number } };
      if (data.orderId !== 2 || refused) return { status: 204 };
      refused = true;
      return { status: 503 };
    });

    const ids: string[] = [];
    for (const orderId of [1, 2, 3]) {
      const res = await fetch(`${exampleUrl}/orders`, {
        method: "POST",
        body: JSON.stringify({ orderId }),
      });
      expect(res.status, await res.clone().text()).toBe(201);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await deliverUntil(stack, "orders", () => settled(stack, "orders", "shop"), "all delivered");

    const passedOn = downstream.requests.map((r) => {
      const message = JSON.parse(r.raw) as { id: string; attempt: number };
      return [message.id, message.attempt, r.status];
    });
    expect(passedOn.filter(([, attempt]) => attempt === 1).map(([id]) => id)).toEqual(ids);
    expect(passedOn.filter(([, attempt]) => attempt !== 1)).toEqual([[ids[1], 2, 204]]);
    expect(await streamhook.subscriptions.get("orders", "shop")).toMatchObject({
      pending: 0,
      lag: 0,
      deadLetters: 0,
      lastError: "rejected by the endpoint (listed in failed)",
    });
  });

  it("answers 401 to a request whose signature does not match", async () => {
    const res = await fetch(`${exampleUrl}/webhooks/streamhook`, {
      method: "POST",
      headers: {
        "webhook-id": "msg_1",
        "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
      },
      body: '{"channel":"orders","subscription":"shop","messages":[]}',
    });
    expect(res.status).toBe(401);
  });
});
