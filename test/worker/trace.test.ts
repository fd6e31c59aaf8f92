// W3C trace context from a publish to the webhook receiver (docs/tracing.md), against the real
// stack: receivers verify every request's signature with `standardwebhooks`.

import { createStreamhookClient } from "@streamhook/client";
import { beforeEach, describe, expect, it } from "vitest";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { derivedTrace, traceSeed } from "../../shared/trace.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { attemptLog } from "../helpers/observe.ts";
import { pullOnce } from "../helpers/pull.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { passWhenRetryDue, until } from "../helpers/schedule.ts";
import { API_TOKEN, type Stack } from "../helpers/stack.ts";
import { runPass, subscribe } from "../helpers/subscriptions.ts";

// Passes run by hand (no kick), so that two publishes can wait for one batch.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "trace",
  { vars: { KICK_ON_PUBLISH: "false", RETRY_BASE_MS: "200", RETRY_MAX_MS: "400" } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);
beforeEach(() => stack.bridge.faults.clear());

const FORM = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const parts = (traceparent: string | null | undefined) => {
  const match = FORM.exec(traceparent ?? "");
  expect(match, `a version-00 traceparent: ${traceparent}`).not.toBeNull();
  const [, traceId, spanId, flags] = match!;
  return { traceId: traceId!, spanId: spanId!, flags: flags! };
};
const TRACE_A = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACE_B = "0af7651916cd43dd8448eb211c80319c";
const SPAN = "00f067aa0ba902b7";
const traced = (traceId: string, spanId = SPAN) => `00-${traceId}-${spanId}-01`;

async function subscribeReceiver(body: Record<string, unknown> = {}) {
  const sub = await subscribe(stack, channel, { name: "sub", url: receiver.url, ...body });
  receiver.setSecret(sub.secret);
}

/** Publishes one message with these headers (201 expected); its id. */
async function publishWith(data: unknown, headers: Record<string, string>, to = channel) {
  const res = await stack.post(`/v1/channels/${to}/messages`, { data }, headers);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** The channel's history as GET .../messages shows it. */
async function history(to = channel) {
  const res = await stack.api(`/v1/channels/${to}/messages`);
  expect(res.status).toBe(200);
  type Message = { id: string; traceparent: string | null; tracestate?: string };
  return ((await res.json()) as { messages: Message[] }).messages;
}

describe("a publish with a traceparent", () => {
  it("reaches the receiver in its trace: a new span whose parent is the publish's", async () => {
    await subscribeReceiver();
    const traceparent = traced(TRACE_A);
    const tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    const id = await publishWith({ n: 1 }, { traceparent, tracestate });
    await runPass(stack);

    const [request] = receiver.requests;
    expect(request!.verified).toBe(true);
    const header = parts(request!.headers.traceparent);
    expect(header.traceId).toBe(TRACE_A);
    expect(header.spanId).not.toBe(SPAN);
    expect(header.flags).toBe("01");
    expect(request!.headers.tracestate).toBe(tracestate);
    // The body's message carries the publish's context, the request's parent.
    expect(request!.body!.messages).toMatchObject([{ id, traceparent, tracestate }]);
    // The attempt log holds the request's span beside its message; the history, the message's
    // publish span: the chain publish -> request -> receiver is on record.
    const [record] = await attemptLog(stack, channel, "sub");
    expect(record).toMatchObject({ firstId: id, traceparent: request!.headers.traceparent });
    expect(await history()).toMatchObject([{ id, traceparent, tracestate }]);
  });

  it("is a new span on every attempt, in the same trace, under the same webhook-id", async () => {
    receiver.respond((req) => (req.n === 1 ? { status: 503 } : { status: 200 }));
    await subscribeReceiver();
    const traceparent = traced(TRACE_A);
    await publishWith("retried", { traceparent });
    await runPass(stack);
    await passWhenRetryDue(stack, channel, "sub");

    const [first, second] = receiver.requests;
    expect([first!.verified, second!.verified]).toEqual([true, true]);
    expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
    const [a, b] = [parts(first!.headers.traceparent), parts(second!.headers.traceparent)];
    expect([a.traceId, b.traceId]).toEqual([TRACE_A, TRACE_A]);
    expect(new Set([a.spanId, b.spanId, SPAN]).size).toBe(3);
    expect(second!.body!.messages[0]).toMatchObject({ attempt: 2, traceparent });
    const log = await attemptLog(stack, channel, "sub");
    expect(log.map((r) => r.traceparent)).toEqual([
      first!.headers.traceparent,
      second!.headers.traceparent,
    ]);
  });

  it("keeps its trace when its reply is lost and the publish recovers", async () => {
    await subscribeReceiver();
    await loadScripts(stack, [PUBLISH_LUA]);
    const match = runsScript(PUBLISH_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 1 });
    const traceparent = traced(TRACE_A);
    let id = "";
    const injected = await injectedDuring(stack, async () => {
      id = await publishWith("lost", { traceparent });
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(await history()).toMatchObject([{ id, traceparent }]);
    await runPass(stack);
    expect(receiver.messages()).toMatchObject([{ id, traceparent }]);
    expect(parts(receiver.requests[0]!.headers.traceparent).traceId).toBe(TRACE_A);
  });

  it("is dead-lettered with its message, and redriven in its trace", async () => {
    receiver.respond((req) => (req.n === 1 ? { status: 500 } : { status: 200 }));
    await subscribeReceiver({ maxAttempts: 1 });
    const traceparent = traced(TRACE_B);
    const id = await publishWith("doomed", { traceparent });
    await runPass(stack);
    const letters = await stack.api(`/v1/channels/${channel}/subscriptions/sub/dead-letters`);
    expect(((await letters.json()) as { messages: unknown[] }).messages).toMatchObject([
      { id, traceparent },
    ]);
    const redrive = await stack.post(
      `/v1/channels/${channel}/subscriptions/sub/dead-letters/redrive`,
      undefined,
    );
    expect(redrive.status, await redrive.clone().text()).toBe(200);
    // The redrive wakes the subscription itself; a pass as well, should the wake be slow.
    await runPass(stack);
    await until("the redriven message is delivered", async () => receiver.acceptedIds().length > 0);
    const last = receiver.requests.at(-1)!;
    expect(last.body!.messages).toMatchObject([{ id, traceparent }]);
    expect(parts(last.headers.traceparent).traceId).toBe(TRACE_B);
  });
});

describe("a webhook batch", () => {
  it("of two traces is a new trace, each message carrying its own", async () => {
    await subscribeReceiver({ batchSize: 10 });
    const a = traced(TRACE_A);
    const b = `00-${TRACE_B}-b7ad6b7169203331-00`;
    const ids = [
      await publishWith("a", { traceparent: a, tracestate: "congo=1" }),
      await publishWith("b", { traceparent: b }),
    ];
    await runPass(stack);

    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request!.verified).toBe(true);
    const header = parts(request!.headers.traceparent);
    expect([TRACE_A, TRACE_B]).not.toContain(header.traceId);
    // Sampled because message a is; no tracestate: it belongs to a's trace, not this one.
    expect(header.flags).toBe("01");
    expect(request!.headers.tracestate).toBeUndefined();
    expect(request!.body!.messages).toEqual([
      expect.objectContaining({ id: ids[0], traceparent: a, tracestate: "congo=1" }),
      expect.not.objectContaining({ tracestate: expect.anything() }),
    ]);
    expect(request!.body!.messages[1]).toMatchObject({ id: ids[1], traceparent: b });
    const [record] = await attemptLog(stack, channel, "sub");
    expect(record!.traceparent).toBe(request!.headers.traceparent);
  });

  it("of one trace stays in it, its parent the first message's span", async () => {
    await subscribeReceiver({ batchSize: 10 });
    const first = traced(TRACE_A, "1111111111111111");
    const second = traced(TRACE_A, "2222222222222222");
    await publishWith(1, { traceparent: first });
    await publishWith(2, { traceparent: second });
    await runPass(stack);
    const [request] = receiver.requests;
    const header = parts(request!.headers.traceparent);
    expect(header.traceId).toBe(TRACE_A);
    expect(["1111111111111111", "2222222222222222"]).not.toContain(header.spanId);
    expect(request!.body!.messages.map((m) => m.traceparent)).toEqual([first, second]);
  });
});

describe("a publish without a valid traceparent", () => {
  it("starts a new trace, unsampled, and is delivered in it", async () => {
    await subscribeReceiver();
    const id = await publishWith("untraced", {});
    await runPass(stack);
    const [message] = await history();
    const started = parts(message!.traceparent);
    expect(started.flags).toBe("00");
    // Stored nowhere (no `p` field: no byte per message); derived from the channel and the id,
    // the same in the Worker (history) as in the take script (the webhook body).
    const [[, fields]] = (await stack.redis.xrange(stack.keys.channel(channel), id, id)) as [
      [string, string[]],
    ];
    expect(fields).not.toContain("p");
    expect(message!.traceparent).toBe(derivedTrace(traceSeed(channel), id));
    const [request] = receiver.requests;
    expect(request!.verified).toBe(true);
    expect(request!.body!.messages).toMatchObject([{ id, traceparent: message!.traceparent }]);
    const header = parts(request!.headers.traceparent);
    expect(header.traceId).toBe(started.traceId);
    expect(header.spanId).not.toBe(started.spanId);
  });

  it.each([
    ["uppercase hex", `00-${TRACE_A.toUpperCase()}-${SPAN}-01`],
    ["version ff", `ff-${TRACE_A}-${SPAN}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["not a traceparent at all", "hello"],
  ])("ignores one with %s (not refused), and its tracestate", async (_, traceparent) => {
    await subscribeReceiver();
    const id = await publishWith("x", { traceparent, tracestate: "congo=1" });
    const [message] = await history();
    expect(message!.id).toBe(id);
    expect(parts(message!.traceparent).traceId).not.toBe(TRACE_A);
    expect(message!.tracestate).toBeUndefined();
    await runPass(stack);
    expect(receiver.messages()).toMatchObject([{ id, traceparent: message!.traceparent }]);
  });
});

describe("the trace of a message, read back", () => {
  it("comes with a pull", async () => {
    await subscribe(stack, channel, { name: "work", mode: "pull" });
    const traceparent = traced(TRACE_B);
    const id = await publishWith("pulled", { traceparent, tracestate: "rojo=x" });
    const { messages } = await pullOnce(stack, channel, "work");
    expect(messages).toMatchObject([{ id, traceparent, tracestate: "rojo=x" }]);
  });

  it("is sent by the typed client's publish, and its history types carry it", async () => {
    const client = createStreamhookClient({ baseUrl: stack.url, token: API_TOKEN });
    const traceparent = traced(TRACE_B);
    const { id } = await client.publish(channel, { data: 1 }, { traceparent });
    const page = await client.api.GET("/v1/channels/{channel}/messages", {
      params: { path: { channel }, query: {} },
    });
    const message = page.data!.messages[0]!;
    expect(message.id).toBe(id);
    expect(message.traceparent).toBe(traceparent);
  });

  it("shows in the dashboard's attempt log: each request's trace id, its traceparent as value", async () => {
    await subscribeReceiver();
    await publishWith("seen", { traceparent: traced(TRACE_A) });
    await runPass(stack);
    const sent = receiver.requests[0]!.headers.traceparent!;
    const res = await fetch(
      `${stack.url}/dashboard/fragments/channels/${channel}/subscriptions/sub`,
      {
        headers: { authorization: `Bearer ${API_TOKEN}` },
      },
    );
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain(`value="${sent}"`);
    expect(html).toContain(`>${TRACE_A}</data>`);
  });
});
