import { describe, expect, it } from "vitest";
import { idTime } from "../../shared/streams.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import { type Pulled, pullOnce } from "../helpers/pull.ts";
import type { TestReceiver } from "../helpers/receiver.ts";
import { until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import { subscribe } from "../helpers/subscriptions.ts";

// Delayed messages with the delivery queue bound (wrangler.toml as deployed): each comes due at
// its second, by a timer task the queue holds back (delaySeconds), with no cron and no pass.
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture("delayed-q", { queue: true }, (f) => {
  ({ stack, receiver, channel } = f);
});

describe("1,000 messages delayed between 1 and 5 s", () => {
  it("arrive each within 1 s of its time and none early, to push and pull subscribers; a cancelled one never", async () => {
    const sub = await subscribe(stack, channel, { name: "push", url: receiver.url });
    receiver.setSecret(sub.secret);
    await subscribe(stack, channel, { name: "pull", mode: "pull" });

    // Ten publishes of 100, their times shuffled across the four seconds, so that most publishes
    // do not bring the channel's timer earlier and some do.
    const start = Date.now() + 1000;
    const notBefore = (k: number) => new Date(start + ((k * 7919) % 1000) * 4).toISOString();
    const dueOf = new Map<string, number>();
    for (let b = 0; b < 10; b++) {
      const messages = Array.from({ length: 100 }, (_, i) => ({
        data: { k: b * 100 + i },
        notBefore: notBefore(b * 100 + i),
      }));
      const res = await stack.post(`/v1/channels/${channel}/messages`, { messages });
      expect(res.status).toBe(201);
      const { ids } = (await res.json()) as { ids: string[] };
      ids.forEach((id, i) => {
        dueOf.set(id, Date.parse(messages[i]!.notBefore));
      });
    }
    expect(Date.now()).toBeLessThan(start); // every one published before the first is due
    // Ten of them cancelled while they wait.
    const cancelled = [...dueOf.keys()].filter((_, i) => i % 100 === 37);
    for (const id of cancelled) {
      const res = await stack.api(`/v1/channels/${channel}/delayed/${id}`, { method: "DELETE" });
      expect(res.status).toBe(204);
      dueOf.delete(id);
    }

    // A consumer pulls all along, as a worker would.
    const pulled: { message: Pulled; at: number }[] = [];
    let pulling = true;
    const puller = (async () => {
      while (pulling) {
        const { messages } = await pullOnce(stack, channel, "pull", { max: 1000 });
        const at = Date.now();
        for (const message of messages) pulled.push({ message, at });
        if (messages.length > 0) {
          await stack.post(`/v1/channels/${channel}/subscriptions/pull/ack`, {
            ids: messages.map((m) => m.id),
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await receiver.waitFor((r) => r.messages().length >= 990, 20_000);
      await until("all pulled", async () => pulled.length >= 990, 10_000);
    } finally {
      pulling = false;
      await puller;
    }

    // Push: each once, signed, within a second of its time, never before it.
    expect(receiver.requests.every((r) => r.verified)).toBe(true);
    const late: number[] = [];
    const seen = new Set<string>();
    for (const request of receiver.requests) {
      for (const m of request.body!.messages) {
        const delayedId = m.delayedId!;
        expect(dueOf.has(delayedId), `${delayedId} was delivered`).toBe(true);
        expect(seen.has(delayedId), `${delayedId} came twice`).toBe(false);
        seen.add(delayedId);
        late.push(request.at - dueOf.get(delayedId)!);
      }
    }
    expect(seen.size).toBe(990);
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...late)).toBeLessThan(1000);

    // Pull: each once, none early (its entry is no older than its time), within a second.
    const pulledIds = pulled.map(({ message }) => message.delayedId!);
    expect(new Set(pulledIds).size).toBe(990);
    expect(pulledIds.every((id) => dueOf.has(id))).toBe(true);
    for (const { message, at } of pulled) {
      const due = dueOf.get(message.delayedId!)!;
      expect(idTime(message.id)).toBeGreaterThanOrEqual(due);
      expect(at - due).toBeLessThan(1000);
    }

    // Nothing waits any more, and no timer either.
    const left = await stack.redis.zcard(stack.keys.delayed(channel));
    expect(left).toBe(0);
    expect(await stack.redis.zscore(stack.keys.due(), `delay:${channel}`)).toBeNull();
  }, 60_000);
});
