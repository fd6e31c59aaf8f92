import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PULL_REPLY_BYTES } from "../../functions/pull.ts";
import { pullAction, pullOnce, QUIET_PULLS } from "../helpers/pull.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, publish, subscribe } from "../helpers/subscriptions.ts";

// A pull's reply stays within PULL_REPLY_BYTES of message data whatever the messages' sizes: the
// Worker sizes its takes by the largest message it has seen, and the take (lua/take.ts) keeps to
// the budget when messages come larger than that, giving back what does not fit. Default
// MAX_MESSAGE_BYTES (256 KiB). A pull looks for expired leases only on the isolate's first pull
// and after a nack (PULL_LOOK_EVERY_MS an hour), so which pulls below look is known, however
// slow the run.
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vars: QUIET_PULLS });
});
afterAll(async () => {
  await stack?.stop();
});

async function pull(body: Record<string, unknown>) {
  return (await pullOnce(stack, "p-bytes", "work", { visibilityTimeoutMs: 60_000, ...body }))
    .messages;
}

describe("a pull's bytes", () => {
  it("stay within the budget when messages grow, and what did not fit comes back as first attempts", async () => {
    await subscribe(stack, "p-bytes", { name: "work", mode: "pull", from: "earliest" });
    const small = await publish(stack, "p-bytes", [{ data: 1 }, { data: 2 }]);
    // Two pulls of small messages: the next reads are sized for messages of a few bytes.
    expect((await pull({ max: 1 })).map((m) => m.id)).toEqual([small[0]]);
    expect((await pull({ max: 1 })).map((m) => m.id)).toEqual([small[1]]);
    // 40 messages of 250,000 bytes: 10 MB, more than one pull may return.
    const big: string[] = [];
    for (let i = 0; i < 40; i += 3) {
      const n = Math.min(3, 40 - i);
      const messages = Array.from({ length: n }, () => ({ data: "x".repeat(249_998) }));
      big.push(...(await publish(stack, "p-bytes", messages)));
    }
    const first = await pull({ max: 100 });
    const bytes = first.reduce((sum, m) => sum + JSON.stringify(m.data).length, 0);
    expect(bytes).toBeLessThanOrEqual(PULL_REPLY_BYTES);
    expect(first.length).toBe(Math.floor(PULL_REPLY_BYTES / 250_000));
    expect(first.map((m) => m.id)).toEqual(big.slice(0, first.length));
    expect(first.every((m) => m.attempt === 1)).toBe(true);
    // The rest were given back, not lost: the next pull that looks (a nack makes the next one
    // look) hands them out, as first attempts.
    await pullAction(stack, "p-bytes", "work", "nack", { ids: [first[0]!.id], delayMs: 60_000 });
    const rest = await pull({ max: 100 });
    expect(rest.map((m) => m.id)).toEqual(big.slice(first.length));
    expect(rest.every((m) => m.attempt === 1)).toBe(true);
    expect(await getSubscription(stack, "p-bytes", "work")).toMatchObject({ lag: 0 });
  }, 60_000);
});
