// A bounded soak: publishers, kicks and passes at once, while the bridge loses replies, refuses
// and delays a few per cent of the Worker's Redis requests and one receiver fails at random. Then
// the faults stop, everything drains, and the books must balance: every message stored once,
// delivered to every healthy subscriber or dead-lettered by the failing one, nothing pending,
// nothing scheduled. Every draw is seeded (the bridge's faults, the receivers, the publishers).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mulberry32 } from "../../dev/bridge-faults.ts";
import { loadScripts, scheduledOn, stranded, type UnitState } from "../helpers/faults.ts";
import {
  attemptLog,
  labelsOf,
  recordKeys,
  requestKeys,
  scrapeMetrics,
} from "../helpers/observe.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliveriesScheduled, until } from "../helpers/schedule.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { groupOf, pendingCount, sleep, subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
const receivers: TestReceiver[] = [];
beforeAll(async () => {
  // Leases last the pass budget + the subscription's timeout + 5 s: 7 s here.
  stack = await startStack({
    vars: { RETRY_BASE_MS: "50", RETRY_MAX_MS: "400", PASS_BUDGET_MS: "1000" },
  });
  await loadScripts(stack);
});
afterAll(async () => {
  for (const r of receivers) await r.close();
  await stack?.stop();
});

const CHANNEL = "soak";
const PUBLISHERS = 4;
const PUBLISHES_EACH = 60;
const LARGE_EVERY = 25; // about one publish in 25 carries a 100-200 KiB message
const SOAK_MS = 60_000;

interface Subscriber {
  name: string;
  receiver: TestReceiver;
  healthy: boolean;
}

/** A receiver that answers 2xx to everything, after up to `maxDelayMs`. */
async function healthyReceiver(seed: number, maxDelayMs: number) {
  const r = await startReceiver();
  const next = mulberry32(seed);
  r.respond(() => ({ status: 204, delayMs: Math.floor(next() * maxDelayMs) }));
  return r;
}

/** 12% 5xx, 12% a random part listed in {"failed"}, 5% slower than the timeout; else 2xx. */
async function failingReceiver(seed: number) {
  const r = await startReceiver();
  const next = mulberry32(seed);
  r.respond((req) => {
    const roll = next();
    if (roll < 0.12) return { status: 503 };
    if (roll < 0.24) {
      const ids = (req.body?.messages ?? []).map((m) => m.id).filter(() => next() < 0.5);
      return { status: 200, body: { failed: ids } };
    }
    if (roll < 0.29) return { status: 204, delayMs: 1500 };
    return { status: 204 };
  });
  return r;
}

/** The marker every published message carries in its data: `p<publisher>.<publish>.<index>`. */
const markerOf = (data: unknown) => (data as { marker: string }).marker;

describe("a soak with lost, refused and delayed Redis replies and a failing receiver", () => {
  it("stores each message once and delivers it to every healthy subscriber or the dead letters", async () => {
    const started = Date.now();
    const subscribers: Subscriber[] = [
      { name: "fast", receiver: await healthyReceiver(11, 5), healthy: true },
      { name: "slow", receiver: await healthyReceiver(12, 60), healthy: true },
      { name: "single", receiver: await healthyReceiver(13, 5), healthy: true },
      { name: "flaky", receiver: await failingReceiver(14), healthy: false },
    ];
    receivers.push(...subscribers.map((s) => s.receiver));
    const settings: Record<string, Record<string, unknown>> = {
      fast: { batchSize: 20 },
      slow: { batchSize: 5 },
      single: { batchSize: 1 },
      flaky: { batchSize: 10, maxAttempts: 2 },
    };
    const groups: Record<string, string> = {};
    for (const s of subscribers) {
      await subscribe(stack, CHANNEL, {
        name: s.name,
        url: s.receiver.url,
        from: "earliest",
        timeoutMs: 1000,
        ...settings[s.name],
      });
      groups[s.name] = await groupOf(stack, CHANNEL, s.name);
    }

    // The invariant, all along: a unit with pending entries always has a wake or retry member.
    const violations: UnitState[][] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const found = await stranded(stack, CHANNEL, groups);
        if (found.length > 0) violations.push(found);
        await sleep(10);
      }
    })();

    let injected: Record<string, number> = {};
    const told: string[] = [];
    try {
      // A few per cent of the Worker's Redis requests fail; the bridge draws them from its seed.
      stack.bridge.faults.add({ kind: "drop-reply", rate: 0.02 });
      stack.bridge.faults.add({ kind: "refuse", rate: 0.01 });
      stack.bridge.faults.add({ kind: "delay", rate: 0.03, delayMs: 40 });

      // Publishers, the kick on. A publish answered 503 is repeated with its Idempotency-Key if it
      // has one (its ids are then told), else given up (stored or not, nobody was told).
      let publishing = true;
      const publisher = async (p: number) => {
        const next = mulberry32(100 + p);
        for (let i = 0; i < PUBLISHES_EACH; i++) {
          const count = 1 + Math.floor(next() * 5);
          const messages = Array.from({ length: count }, (_, j) => {
            const large = j === 0 && next() < 1 / LARGE_EVERY;
            const pad = large ? "x".repeat(100 * 1024 + Math.floor(next() * 100 * 1024)) : "";
            return { type: "soak.test", data: { marker: `p${p}.${i}.${j}`, pad } };
          });
          const keyed = next() < 0.5;
          const headers: Record<string, string> = keyed ? { "idempotency-key": `p${p}-${i}` } : {};
          for (let attempt = 0; attempt < 4; attempt++) {
            const res = await stack.post(`/v1/channels/${CHANNEL}/messages`, { messages }, headers);
            if (res.status === 200 || res.status === 201) {
              told.push(...((await res.json()) as { ids: string[] }).ids);
              break;
            }
            expect(res.status, await res.text()).toBe(503);
            if (!keyed) break;
          }
          await sleep(Math.floor(next() * 150));
        }
      };
      // A pass now and then, as the cron would run one; under faults a pass may answer 5xx.
      const passes = async () => {
        while (publishing) {
          await stack.post("/v1/deliver", undefined);
          await sleep(100);
        }
      };
      const cron = passes();
      await Promise.all(Array.from({ length: PUBLISHERS }, (_, p) => publisher(p)));
      publishing = false;
      await cron;
      injected = { ...stack.bridge.faults.injected };

      // Faults off: passes until nothing is pending or scheduled, within the soak's bound.
      stack.bridge.faults.clear();
      const idle = async () => {
        if ((await scheduledOn(stack, CHANNEL)).length > 0) return false;
        const pending = await Promise.all(
          subscribers.map((s) => pendingCount(stack, CHANNEL, s.name)),
        );
        return pending.every((n) => n === 0);
      };
      while (!(await idle()) && Date.now() - started < SOAK_MS) {
        const res = await stack.post("/v1/deliver", undefined);
        expect(res.status, await res.text()).toBe(200);
        await sleep(50);
      }
    } finally {
      watching = false;
      await watcher;
      stack.bridge.faults.clear();
    }

    // The books. Stored: each marker exactly once, every id a publisher was told among them.
    const entries = await stack.redis.xrange(stack.keys.channel(CHANNEL), "-", "+");
    const stored = entries.map(([id, fields]) => ({
      id,
      marker: markerOf(JSON.parse(fields[fields.indexOf("d") + 1]!)),
    }));
    const markerById = new Map(stored.map((s) => [s.id, s.marker]));
    const markers = stored.map((s) => s.marker);
    expect(markers.filter((m, i) => markers.indexOf(m) !== i)).toEqual([]);
    expect(stored.map((s) => s.id)).toEqual(expect.arrayContaining(told));
    const ids = stored.map((s) => s.id);

    for (const s of subscribers) {
      // Every message the receiver saw is a stored one, under its stored id: no copy of a message
      // under another id (the same id again is at-least-once, and allowed).
      for (const m of s.receiver.messages()) {
        expect(markerOf(m.data), `${s.name}: ${m.id}`).toBe(markerById.get(m.id));
      }
      expect(await pendingCount(stack, CHANNEL, s.name), s.name).toBe(0);
    }
    for (const s of subscribers.filter((x) => x.healthy)) {
      const answered = new Set(s.receiver.answeredIds());
      expect(
        ids.filter((id) => !answered.has(id)),
        `${s.name} never got these`,
      ).toEqual([]);
    }
    const flaky = subscribers.find((x) => !x.healthy)!;
    const dead = (
      await stack.redis.xrange(stack.keys.deadLetters(CHANNEL, flaky.name), "-", "+")
    ).map(([, fields]) => fields[fields.indexOf("o") + 1]!);
    expect(
      dead.filter((id, i) => dead.indexOf(id) !== i),
      "dead-lettered twice",
    ).toEqual([]);
    const accepted = new Set([...flaky.receiver.acceptedIds(), ...dead]);
    expect(
      ids.filter((id) => !accepted.has(id)),
      "flaky: neither accepted nor dead-lettered",
    ).toEqual([]);
    expect(violations).toEqual([]);
    expect(await deliveriesScheduled(stack)).toBe(0);

    // The attempt log holds every request each receiver got, once. A record no receiver saw is
    // a request that timed out before its body arrived (a loaded machine, a large batch). The
    // last runs' records are the isolate's ledger's to write within a second (worker/ledger.ts).
    for (const s of subscribers) {
      const received = requestKeys(s.receiver.requests).map((k) => k.join(" "));
      const keysLogged = async () =>
        recordKeys(await attemptLog(stack, CHANNEL, s.name)).map((k) => k.join(" "));
      await until(
        `${s.name}: every request logged`,
        async () => {
          const logged = new Set(await keysLogged());
          return received.every((k) => logged.has(k));
        },
        5000,
      ).catch(() => undefined); // what is missing is asserted below
      const log = await attemptLog(stack, CHANNEL, s.name);
      const logged = recordKeys(log).map((k) => k.join(" "));
      const twice = logged.filter((k, i) => logged.indexOf(k) !== i);
      expect(twice, `${s.name}: logged twice`).toEqual([]);
      expect(
        received.filter((k) => !logged.includes(k)),
        `${s.name}: not logged`,
      ).toEqual([]);
      const unseen = log.filter((_, i) => !received.includes(logged[i]!));
      expect(unseen.map((a) => a.status).filter((status) => status !== "timeout")).toEqual([]);
    }
    const { samples } = await scrapeMetrics(stack);
    expect(
      samples.get(`streamhook_messages_dead_lettered_total${labelsOf(CHANNEL, flaky.name)}`),
    ).toBe(dead.length);

    // The soak was one: faults of every kind, large messages, failures, dead letters.
    expect(injected["drop-reply"]).toBeGreaterThan(0);
    expect(injected.refuse).toBeGreaterThan(0);
    expect(injected.delay).toBeGreaterThan(0);
    expect(dead.length).toBeGreaterThan(0);
    const large = entries.filter(([, f]) => f[f.indexOf("d") + 1]!.length > 100 * 1024);
    expect(large.length).toBeGreaterThan(0);
  }, 90_000);
});
