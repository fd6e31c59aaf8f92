// The receiver's side of @streamhook/client on real deliveries from the Worker: the README's Node
// example (client/examples/node.ts) as the endpoint, retries of exactly what it failed, secret
// rotation, and refusals of tampered, foreign and stale requests, checked against the
// `standardwebhooks` package.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  createStreamhookClient,
  type StreamhookClient,
  verifyWebhook,
  type WebhookMessage,
  WebhookVerificationError,
} from "@streamhook/client";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { orderCreated, webhookListener } from "../../client/examples/node.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled, until } from "../helpers/schedule.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";

const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER = "whsec_dGhpcyBpcyBhbm90aGVyIHNlY3JldCBrZXkhIQ==";

let stack: Stack;
let streamhook: StreamhookClient;
const servers: Server[] = [];
const receivers: TestReceiver[] = [];
beforeAll(async () => {
  // Retries come within about a second, so a test waits for one (read from Redis) briefly.
  stack = await startStack({ vars: { RETRY_BASE_MS: "1000" } });
  streamhook = createStreamhookClient({ baseUrl: stack.url, token: API_TOKEN });
});
afterAll(async () => {
  for (const server of servers) server.close();
  for (const receiver of receivers) await receiver.close();
  await stack?.stop();
});

/** The Node example's listener on a real port; `handle` as the example's user would write it. */
async function exampleEndpoint(
  secrets: string[],
  handle: (message: WebhookMessage) => Promise<void>,
) {
  const server = createServer(webhookListener(secrets, handle));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
}

/** A recording receiver (test/helpers/receiver.ts): every request's raw body and headers. */
async function recorder(secret: string) {
  const receiver = await startReceiver({ secret });
  receivers.push(receiver);
  return receiver;
}

const whyRefused = (promise: Promise<unknown>) =>
  promise.then(
    () => "accepted",
    (error: unknown) => (error instanceof WebhookVerificationError ? error.message : error),
  );

/** The standardwebhooks package's verdict on a request, with one secret. */
function theirs(secret: string, raw: string, headers: Record<string, string>): string {
  try {
    new Webhook(secret).verify(raw, headers);
    return "accepted";
  } catch {
    return "refused";
  }
}

describe("a receiver built on verifyWebhook and respond (the Node example)", () => {
  it("gets every message, and the Worker retries exactly the ones it failed", async () => {
    const seen: [string, number][] = [];
    const failOnce = new Set<number>([2, 4]);
    const channel = "orders";
    const url = await exampleEndpoint([SECRET], async (message) => {
      seen.push([message.id, message.attempt]);
      const { orderId } = message.data as { orderId: number };
      if (message.attempt === 1 && failOnce.has(orderId)) throw new Error("not now");
    });
    await streamhook.subscriptions.create(channel, { name: "example", url, secret: SECRET });

    const ids: string[] = [];
    for (const orderId of [1, 2, 3, 4, 5]) ids.push(await orderCreated(streamhook, orderId));
    await until("the first attempts", async () => seen.length >= 5);
    // Passes when retries come due (read from Redis), until nothing is left to deliver.
    await deliverUntil(stack, channel, () => settled(stack, channel, "example"), "all delivered");

    const firstAttempts = seen.filter(([, attempt]) => attempt === 1).map(([id]) => id);
    const retries = seen.filter(([, attempt]) => attempt > 1);
    expect(firstAttempts.sort()).toEqual([...ids].sort());
    expect(retries.sort()).toEqual([
      [ids[1], 2],
      [ids[3], 2],
    ]);
    expect(await streamhook.subscriptions.get(channel, "example")).toMatchObject({
      pending: 0,
      lag: 0,
      deadLetters: 0,
    });
  });

  it("answers a request signed with another secret 401, so nothing is acknowledged", async () => {
    const handled: string[] = [];
    const url = await exampleEndpoint([OTHER], async (message) => {
      handled.push(message.id);
    });
    await streamhook.subscriptions.create("foreign", { name: "wrong", url, from: "latest" });
    await streamhook.publish("foreign", { data: "signed with the subscription's own secret" });
    await until(
      "the failure recorded",
      async () => (await streamhook.subscriptions.get("foreign", "wrong")).consecutiveFailures > 0,
    );
    const sub = await streamhook.subscriptions.get("foreign", "wrong");
    expect(sub).toMatchObject({ lastError: "HTTP 401", pending: 1 });
    expect(handled).toEqual([]);
  });
});

describe("verifyWebhook on the Worker's own requests", () => {
  it("accepts them, and refuses them tampered, with another secret or too old, as standardwebhooks does", async () => {
    const secret = SECRET;
    const receiver = await recorder(secret);
    await streamhook.subscriptions.create("checked", { name: "rec", url: receiver.url, secret });
    await streamhook.publishBatch("checked", [{ data: { n: 1 } }, { data: "ünïcødé" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    const { raw, headers } = receiver.requests[0]!;

    const batch = await verifyWebhook(secret, headers, raw);
    expect(batch).toMatchObject({ channel: "checked", subscription: "rec" });
    expect(batch.messages.map((m) => m.data)).toEqual([{ n: 1 }, "ünïcødé"]);
    expect(theirs(secret, raw, headers)).toBe("accepted");

    const tampered = raw.replace('"n":1', '"n":2');
    expect(await whyRefused(verifyWebhook(secret, headers, tampered))).toBe(
      "no signature matches the secret",
    );
    expect(theirs(secret, tampered, headers)).toBe("refused");

    expect(await whyRefused(verifyWebhook(OTHER, headers, raw))).toBe(
      "no signature matches the secret",
    );
    expect(theirs(OTHER, raw, headers)).toBe("refused");

    const sentAt = Number(headers["webhook-timestamp"]) * 1000;
    expect(await whyRefused(verifyWebhook(secret, headers, raw, { now: sentAt + 301_000 }))).toBe(
      "webhook-timestamp too old",
    );
    expect(await whyRefused(verifyWebhook(secret, headers, raw, { now: sentAt + 299_000 }))).toBe(
      "accepted",
    );
  });

  it("accepts either secret while one rotates: the Worker signs with both", async () => {
    const receiver = await recorder(SECRET);
    const { secret: old } = await streamhook.subscriptions.create("rotating", {
      name: "rec",
      url: receiver.url,
    });
    const { secret: next } = await streamhook.subscriptions.rotateSecret("rotating", "rec");
    await streamhook.publish("rotating", { data: "after the rotation" });
    await receiver.waitFor((r) => r.requests.length === 1);
    const { raw, headers } = receiver.requests[0]!;

    expect(headers["webhook-signature"]!.split(" ")).toHaveLength(2);
    for (const secrets of [[old!], [next!], [next!, old!]]) {
      expect(await whyRefused(verifyWebhook(secrets, headers, raw)), String(secrets)).toBe(
        "accepted",
      );
    }
    expect([theirs(old!, raw, headers), theirs(next!, raw, headers)]).toEqual([
      "accepted",
      "accepted",
    ]);
  });
});

describe("dead letters through the client", () => {
  it("lists a message that used up its attempts, and redrives it to the endpoint", async () => {
    const secret = SECRET;
    let accept = false;
    const delivered: string[] = [];
    const url = await exampleEndpoint([secret], async (message) => {
      if (!accept) throw new Error("refused");
      delivered.push(message.id);
    });
    await streamhook.subscriptions.create("dead", { name: "once", url, secret, maxAttempts: 1 });
    const { id } = await streamhook.publish("dead", { data: "x" });
    await until(
      "dead-lettered",
      async () => (await streamhook.subscriptions.get("dead", "once")).deadLetters === 1,
    );
    const dead = [];
    for await (const letter of streamhook.deadLetters.list("dead", "once")) dead.push(letter);
    expect(dead.map((d) => [d.id, d.data, d.attempts])).toEqual([[id, "x", 1]]);

    accept = true;
    expect(await streamhook.deadLetters.redrive("dead", "once")).toMatchObject({ redriven: 1 });
    await until("redelivered", async () => delivered.length === 1);
    expect(delivered).toEqual([id]);
  });
});
