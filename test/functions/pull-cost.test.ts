import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { loadScripts } from "../helpers/faults.ts";
import { type Pulled, pullAction, QUIET_PULLS } from "../helpers/pull.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, subscribe } from "../helpers/subscriptions.ts";

// What a pull, an ack and a nack cost, counted by Redis itself (commands inside the take script
// included, as Upstash bills them: its EVALSHA and each redis.call). A pull is one take
// (lua/take.ts). It looks for leases that ran out only on an isolate's first pull of a
// subscription and after a nack here (PULL_LOOK_EVERY_MS an hour), so each count is exactly the
// kind of pull it names; no trim comes due (lua/trim.ts).
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: QUIET_PULLS });
  // Each take is one EVALSHA that runs, whichever test comes first (never NOSCRIPT, then EVAL).
  await loadScripts(stack, [TAKE_LUA]);
});
afterAll(async () => {
  await stack?.stop();
});

const call = (channel: string, action: string, body: unknown) =>
  pullAction<{ messages: Pulled[]; acked: number }>(stack, channel, "work", action, body);

const many = (n: number) => Array.from({ length: n }, (_, i) => ({ data: { n: i } }));

/** A pull subscription whose settings this isolate holds and whose first pull (a look) is done. */
async function ready(channel: string) {
  await subscribe(stack, channel, { name: "work", mode: "pull", from: "earliest" });
  await call(channel, "pull", {});
}

describe("the cost of pulling", () => {
  it("is 2 commands for a pull that returns new messages (one take, no lease), 1 for an ack", async () => {
    await ready("c-fresh");
    const ids = await publish(stack, "c-fresh", many(50));
    const pulled = await countCommands(stack.redis, () => call("c-fresh", "pull", { max: 50 }));
    expect(pulled.byCommand).toEqual({ evalsha: 1, xreadgroup: 1 });
    const acked = await countCommands(stack.redis, () => call("c-fresh", "ack", { ids }));
    expect(acked.byCommand).toEqual({ xack: 1 });
  });

  it("adds only the XACK when a pull carries the acks of the one before", async () => {
    await ready("c-carry");
    await call("c-carry", "pull", {});
    await publish(stack, "c-carry", many(20));
    const first = await call("c-carry", "pull", { max: 10 });
    let second: Awaited<ReturnType<typeof call>> | undefined;
    const counted = await countCommands(stack.redis, async () => {
      second = await call("c-carry", "pull", { max: 10, ack: first.messages.map((m) => m.id) });
    });
    expect(counted.byCommand).toEqual({ evalsha: 1, xack: 1, xreadgroup: 1 });
    expect(second?.acked).toBe(10);
    expect(second?.messages).toHaveLength(10);
  });

  it("is 4 commands for a pull that looks for expired leases and finds new messages", async () => {
    await subscribe(stack, "c-look", { name: "work", mode: "pull", from: "earliest" });
    await call("c-look", "ack", { ids: ["1-0"] }); // settings now held; no pull has looked yet
    await publish(stack, "c-look", many(5));
    const pulled = await countCommands(stack.redis, () => call("c-look", "pull", { max: 5 }));
    // The look: the group's summary (nobody holds anything), the holder's due ones; the read.
    expect(pulled.byCommand).toEqual({ evalsha: 1, xpending: 2, xreadgroup: 1 });
  });

  it("adds one XPENDING per consumer holding messages to a look", async () => {
    await ready("c-many");
    await publish(stack, "c-many", many(3));
    const [a] = (await call("c-many", "pull", { max: 1, consumer: "a" })).messages;
    await call("c-many", "pull", { max: 1, consumer: "b" });
    // a's back to the holder for a minute; the nack makes the next pull here look.
    await call("c-many", "nack", { ids: [a!.id], delayMs: 60_000 });
    const pulled = await countCommands(stack.redis, () =>
      call("c-many", "pull", { max: 1, consumer: "c" }),
    );
    // The summary, b's (a holds nothing now; the holder's are asked by their own time), the
    // holder's due ones (none), then the read.
    expect(pulled.byCommand).toEqual({ evalsha: 1, xpending: 3, xreadgroup: 1 });
  });

  it("is the same 2 commands for a pull with a visibility timeout of its own: no lease either", async () => {
    await ready("c-own");
    await publish(stack, "c-own", many(1));
    const pulled = await countCommands(stack.redis, () =>
      call("c-own", "pull", { max: 1, visibilityTimeoutMs: 60_000 }),
    );
    expect(pulled.byCommand).toEqual({ evalsha: 1, xreadgroup: 1 });
  });

  it("is 4 commands for a pull that takes over expired leases: the summary, the holder's, the claim", async () => {
    await ready("c-expired");
    const ids = await publish(stack, "c-expired", many(5));
    await call("c-expired", "pull", { max: 5 });
    const nacked = await countCommands(stack.redis, () => call("c-expired", "nack", { ids }));
    expect(nacked.byCommand).toEqual({ xclaim: 1 });
    const pulled = await countCommands(stack.redis, () => call("c-expired", "pull", { max: 5 }));
    expect(pulled.byCommand).toEqual({ evalsha: 1, xpending: 2, xclaim: 1 });
  });
});
