import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Which subscriptions a pass serves: never one it cannot finish cleanly, and every due one in
// turn, however many there are.

function stackWith(vars: Record<string, string>) {
  const state: { stack?: Stack; receivers: TestReceiver[] } = { receivers: [] };
  beforeAll(async () => {
    state.stack = await startStack({ vars: { KICK_ON_PUBLISH: "false", ...vars } });
  });
  afterAll(async () => {
    for (const r of state.receivers) await r.close();
    await state.stack?.stop();
  });
  return state;
}

/** Subscribes `names` to `channel`, each with its own receiver answering after `delayMs`. */
async function subscribers(
  state: ReturnType<typeof stackWith>,
  channel: string,
  names: string[],
  delayMs: number,
) {
  const out = new Map<string, TestReceiver>();
  for (const name of names) {
    const receiver = await startReceiver();
    receiver.respond({ status: 204, delayMs });
    state.receivers.push(receiver);
    out.set(name, receiver);
    await subscribe(state.stack!, channel, { name, url: receiver.url, batchSize: 1 });
  }
  return out;
}

const served = (summary: { subscriptions: { subscription: string }[] }) =>
  summary.subscriptions.map((s) => s.subscription).sort();

describe("a pass past its deadline", () => {
  const state = stackWith({ PASS_CONCURRENCY: "1", PASS_BUDGET_MS: "600" });

  it("starts no visit it could not finish, and the next pass serves those first", async () => {
    const stack = state.stack!;
    const receivers = await subscribers(state, "late", ["a", "b", "c"], 400);
    await publish(stack, "late", [{ data: 1 }]);
    // One at a time, 400 ms each: a and b start before the 600 ms deadline, c would not.
    const first = await runPass(stack);
    expect(served(first)).toEqual(["a", "b"]);
    expect(receivers.get("c")!.requests).toHaveLength(0);
    const second = await runPass(stack);
    expect(second.subscriptions[0]?.subscription).toBe("c");
    expect(receivers.get("c")!.messages()).toHaveLength(1);
  });
});

describe("more due subscriptions than a pass takes", () => {
  const state = stackWith({
    PASS_CONCURRENCY: "2",
    PASS_MAX_SUBSCRIPTIONS: "2",
    PASS_BUDGET_MS: "300",
  });

  it("are served in turn: a unit the budget stops goes to the back", async () => {
    const stack = state.stack!;
    await subscribers(state, "turns", ["s0", "s1", "s2", "s3"], 100);
    // A backlog none of them finishes in one pass. All four are due at the same time.
    await publish(
      stack,
      "turns",
      Array.from({ length: 10 }, (_, i) => ({ data: i })),
    );
    expect(served(await runPass(stack))).toEqual(["s0", "s1"]);
    expect(served(await runPass(stack))).toEqual(["s2", "s3"]);
    expect(served(await runPass(stack))).toEqual(["s0", "s1"]);
  });
});
