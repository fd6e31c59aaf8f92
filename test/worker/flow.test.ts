// Flow keys on the real stack: subscriptions on different channels that name one key share its
// rate and its parallelism, over every deliverer run; one without a key is not held by it; a
// lost reply of the take that holds the key's slots leaks none. Passes run by hand (no kick).

import { beforeEach, describe, expect, it } from "vitest";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { generateSecret } from "../../shared/subscription.ts";
import { injectedDuring, loadScripts, runsScript } from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { nextDueOn } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { publish, runPass, subscribe, waitUntil } from "../helpers/subscriptions.ts";

// The receiver stamps a request when its body has arrived, through the test process: two starts
// a full interval apart may land this much closer (test/worker/rate.test.ts saw 39 ms on a loaded
// machine; here three runs open their connections at once, and a first request beside others
// landed over 100 ms late once). Two intervals at 20/s: a shared rate broken shows far more.
const JITTER_MS = 100;
// Answers this slow, 20 requests a second would have 6 in flight: the parallelism binds.
const SLOW_MS = 300;
// Answered at once, two in flight could start far more than 20 a second: the rate binds. Else
// requests take this long, so that several overlap where nothing holds them back.
const ANSWER_MS = 80;

let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("flow", { vars: { KICK_ON_PUBLISH: "false" } }, (f) => {
  ({ stack, receiver, channel } = f);
});

// One secret signs every subscription here, so one receiver verifies them all.
const SECRET = generateSecret();

/** Subscribes `name` on `ch` to `to`, which verifies its signatures. */
async function subscribeTo(to: TestReceiver, ch: string, name: string, body = {}) {
  await subscribe(stack, ch, { name, url: to.url, batchSize: 1, secret: SECRET, ...body });
  to.setSecret(SECRET);
}

/** Publishes `n` messages to `ch`; their ids. */
const publishN = (ch: string, n: number) =>
  publish(
    stack,
    ch,
    Array.from({ length: n }, (_, i) => ({ data: { i } })),
  );

/** Runs passes, each once something on the channels is due, until `done`; 20 s at most. */
async function deliverUntil(channels: string[], done: () => boolean) {
  const deadline = Date.now() + 20_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error("not all delivered in 20 s");
    const due = (await Promise.all(channels.map((ch) => nextDueOn(stack, ch)))).filter(
      (t) => t !== null,
    );
    if (due.length > 0) await waitUntil(Math.min(...due, deadline));
    await runPass(stack);
  }
}

/** The most request starts within any one second (less the jitter). */
function mostInOneSecond(starts: number[]): number {
  let most = 0;
  for (const [i, t] of starts.entries()) {
    most = Math.max(most, starts.filter((u, j) => j >= i && u < t + 1000 - JITTER_MS).length);
  }
  return most;
}

const startsOf = (r: TestReceiver) => r.requests.map((q) => q.at).sort((a, b) => a - b);

/** The runs holding requests under the key, as its state in Redis names them. */
async function holders(key: string): Promise<string[]> {
  const state = await stack.redis.get(stack.keys.flow(key));
  return state === null ? [] : state.split(" ").slice(1);
}

describe("subscriptions sharing a flow key", () => {
  it("never have more than its parallelism in flight, nor more than its rate start in any second", async () => {
    const key = `${channel}.example.com`;
    const flow = { flowKey: key, flowRate: 20, flowParallelism: 2 };
    const other = `${channel}-other`;
    await subscribeTo(receiver, channel, "a", flow);
    await subscribeTo(receiver, channel, "b", flow);
    await subscribeTo(receiver, other, "c", flow);
    // The first third slow, the rest at once: each limit has its turn to bind.
    receiver.respond((req) => (req.n <= 15 ? { status: 204, delayMs: SLOW_MS } : { status: 204 }));
    const ids = [...(await publishN(channel, 15)), ...(await publishN(other, 15))];
    // Each of the 15 on `channel` goes to a and b: 45 requests in all.
    const all = () => receiver.answeredIds().length >= 45;
    await deliverUntil([channel, other], all);
    const answered = receiver.answeredIds();
    for (const id of ids) expect(answered).toContain(id);
    const starts = startsOf(receiver);
    expect(starts).toHaveLength(45);
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    expect(receiver.maxInFlight()).toBe(2);
    // Turns: a run with a backlog leaves the slots it frees to the runs waiting, so all three
    // are served from the start rather than one after the other.
    const first = [...receiver.requests].sort((x, y) => x.at - y.at).slice(0, 6);
    expect(new Set(first.map((r) => r.body?.subscription))).toEqual(new Set(["a", "b", "c"]));
    expect(
      mostInOneSecond(starts),
      `gaps: ${starts.map((t, i) => t - (starts[i - 1] ?? t))}`,
    ).toBeLessThanOrEqual(20);
    // Every run let go of what it held.
    expect(await holders(key)).toEqual([]);
  }, 60_000);

  it("do not hold back a subscription without a key", async () => {
    const free = await startReceiver();
    try {
      await subscribeTo(free, channel, "free");
      free.respond({ status: 204, delayMs: ANSWER_MS });
      await subscribeTo(receiver, channel, "held", {
        flowKey: `${channel}.example.com`,
        flowRate: 5,
        flowParallelism: 1,
      });
      await publishN(channel, 20);
      const all = () => free.answeredIds().length + receiver.answeredIds().length >= 40;
      await deliverUntil([channel], all);
      // Side by side in the same passes: the keyed one one at a time, five a second; the free one
      // several at once, all 20 sent before the keyed one's fifth (slotted 800 ms after its first).
      expect(receiver.maxInFlight()).toBe(1);
      expect(free.maxInFlight()).toBeGreaterThan(1);
      expect(startsOf(free).at(-1)!).toBeLessThan(startsOf(receiver)[4]!);
    } finally {
      await free.close();
    }
  }, 30_000);
});

describe("a lost reply of the take that holds a flow key's slots", () => {
  // Each call of the take a single EVALSHA that runs: the reply dropped is of a take that ran.
  beforeEach(() => loadScripts(stack, [TAKE_LUA]));

  it("is taken again without holding a slot twice: every run lets go", async () => {
    const key = `${channel}.example.com`;
    await subscribeTo(receiver, channel, "a", { flowKey: key, flowParallelism: 2 });
    await subscribeTo(receiver, channel, "b", { flowKey: key, flowParallelism: 2 });
    receiver.respond({ status: 204, delayMs: ANSWER_MS });
    const ids = await publishN(channel, 10);
    // The slots the key's state says are held, watched all along: never more than two.
    let most = 0;
    let watching = true;
    const watched = (async () => {
      while (watching) {
        const counts = (await holders(key)).filter((_, i) => i % 3 === 1).map(Number);
        most = Math.max(
          most,
          counts.reduce((a, b) => a + b, 0),
        );
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    })();
    const injected = await injectedDuring(stack, async () => {
      const remove = stack.bridge.faults.add({
        kind: "drop-reply",
        match: runsScript(TAKE_LUA, stack.keys.flow(key)),
        times: 2,
      });
      const done = () => receiver.answeredIds().length >= 2 * ids.length;
      await deliverUntil([channel], done);
      remove();
    });
    watching = false;
    await watched;
    expect(injected["drop-reply"]).toBe(2);
    expect(most).toBe(2);
    expect(receiver.maxInFlight()).toBeLessThanOrEqual(2);
    expect(await holders(key)).toEqual([]);
    expect(await stack.redis.exists(stack.keys.flow(key))).toBe(0);
  }, 30_000);

  it("of a run that never comes back holds its slots only until their lease ends", async () => {
    const key = `${channel}.example.com`;
    const other = `${channel}-other`;
    // A lease of 2 x 1 s + 5 s (the visibility timeout): the wait below.
    const flow = { flowKey: key, flowParallelism: 1, timeoutMs: 1000 };
    await subscribeTo(receiver, channel, "dies", flow);
    await publishN(channel, 1);
    // The take that holds the slot runs and its reply is lost; its repeat, and every later take
    // of that run, is refused: the run ends without letting go.
    const takes = runsScript(TAKE_LUA, stack.keys.flow(key));
    stack.bridge.faults.add({ kind: "drop-reply", match: takes, times: 1 });
    const refusing = stack.bridge.faults.add({ kind: "refuse", match: takes });
    await runPass(stack);
    refusing();
    const held = await holders(key);
    expect(held).toHaveLength(3);
    const leaseEnd = Number(held[2]);
    expect(leaseEnd).toBeGreaterThan(Date.now());
    expect(leaseEnd).toBeLessThanOrEqual(Date.now() + 7_000);
    // Another subscription on the key waits for the slot until the lease ends (its run polls,
    // within the pass's budget), then delivers.
    await subscribeTo(receiver, other, "waits", flow);
    const [id] = await publishN(other, 1);
    await runPass(stack);
    const request = receiver.requests.find((r) => r.body?.messages.some((m) => m.id === id));
    expect(request?.at).toBeGreaterThanOrEqual(leaseEnd);
    expect(await holders(key)).toEqual([]);
  }, 30_000);
});
