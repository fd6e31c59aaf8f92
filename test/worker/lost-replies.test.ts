// Lost replies, against the real stack: the bridge runs a request and hangs up (drop-reply), or
// hangs up before running it (refuse), on exactly the Redis call a rule is about. The calls sent
// once (shared/redis.ts: the publish script, a deliverer's take with what it carries, its last
// write) must recover without storing, losing or counting anything twice.
//
// What the Worker sees: under wrangler's test harness its outbound requests are made by this
// process, and a failed one comes back to it as a 500 with the error's text (miniflare), never as
// a fetch that throws. @upstash/redis would repeat only a fetch that throws; `db.redis` repeats
// any request whose outcome is unknown itself (shared/redis.ts), so a lost reply on a call that
// is safe to repeat is repeated here as in production.

import { beforeEach, describe, expect, it } from "vitest";
import { mulberry32 } from "../../dev/bridge-faults.ts";
import { LEDGER_LUA } from "../../shared/lua/ledger.ts";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { REPORT_LUA } from "../../shared/lua/report.ts";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import {
  injectedDuring,
  loadScripts,
  nth,
  runsScript,
  scheduledOn,
  stranded,
  type UnitState,
} from "../helpers/faults.ts";
import { deliveryFixture } from "../helpers/fixture.ts";
import {
  attemptLog,
  labelsOf,
  recordKeys,
  requestKeys,
  scrapeMetrics,
} from "../helpers/observe.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, gate, runsOver, settled, until } from "../helpers/schedule.ts";
import type { Stack } from "../helpers/stack.ts";
import {
  groupOf,
  pendingCount,
  publish,
  runPass,
  sleep,
  subscribe,
} from "../helpers/subscriptions.ts";

// The kick is on (as in production). Short retries, and a short pass budget so a lease that is
// left behind would expire within a test (budget + the subscription's timeout + 5 s).
let stack: Stack;
let receiver: TestReceiver;
let channel: string;
deliveryFixture(
  "lost",
  { vars: { RETRY_BASE_MS: "100", RETRY_MAX_MS: "400", PASS_BUDGET_MS: "1000" } },
  (f) => {
    ({ stack, receiver, channel } = f);
  },
);

// No rule left from the test before. The scripts are loaded up front, so every script call is one
// EVALSHA: a rule on it hits the call that ran the script, not a NOSCRIPT answer.
beforeEach(async () => {
  stack.bridge.faults.clear();
  await loadScripts(stack);
});

/** The channel's entries as [id, data] (data as stored JSON text), oldest first. */
async function stored(ch: string) {
  const entries = await stack.redis.xrange(stack.keys.channel(ch), "-", "+");
  return entries.map(([id, fields]) => [id, fields[fields.indexOf("d") + 1]] as const);
}

describe("a publish whose reply is lost", () => {
  const cases: {
    form: string;
    data: unknown[];
    batch: boolean;
    headers: Record<string, string>;
  }[] = [
    { form: "a single message", data: [{ n: 1 }], batch: false, headers: {} },
    { form: "a batch", data: [{ n: 1 }, { n: 2 }], batch: true, headers: {} },
    {
      form: "a batch with an Idempotency-Key",
      data: [{ n: 1 }, { n: 2 }, { n: 3 }],
      batch: true,
      headers: { "idempotency-key": "lost-1" },
    },
  ];

  it.each(cases)("is stored once and answered 201 with its ids: $form", async (c) => {
    const match = runsScript(PUBLISH_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 1 });
    let res: Response | undefined;
    const injected = await injectedDuring(stack, async () => {
      const body = c.batch ? { messages: c.data.map((data) => ({ data })) } : { data: c.data[0] };
      res = await stack.post(`/v1/channels/${channel}/messages`, body, c.headers);
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(res!.status, await res!.clone().text()).toBe(201);
    const reply = (await res!.json()) as { id?: string; ids?: string[] };
    const ids = reply.ids ?? [reply.id!];
    expect(await stored(channel)).toEqual(ids.map((id, i) => [id, JSON.stringify(c.data[i])]));
  });

  // The recovery is safe to repeat, and is repeated when its own reply is lost.
  it("is stored once and answered 201 when the recovery's reply is lost too", async () => {
    const body = { messages: [{ data: "a" }, { data: "b" }] };
    const match = runsScript(PUBLISH_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 2 });
    let res: Response | undefined;
    const injected = await injectedDuring(stack, async () => {
      res = await stack.post(`/v1/channels/${channel}/messages`, body);
    });
    expect(injected["drop-reply"]).toBe(2);
    expect(res!.status).toBe(201);
    const { ids } = (await res!.json()) as { ids: string[] };
    expect(await stored(channel)).toEqual([
      [ids[0], '"a"'],
      [ids[1], '"b"'],
    ]);
  });

  // The first run stored the messages; Redis then refuses the recovery. The answer must not say
  // nothing was written: a client repeating without a key would store them twice.
  it("answers 503 'may or may not' when the recovery is refused after the lost reply", async () => {
    const match = runsScript(PUBLISH_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 1 });
    stack.bridge.faults.add({ kind: "unavailable", match });
    let res: Response | undefined;
    try {
      res = await stack.post(`/v1/channels/${channel}/messages`, { data: "x" });
    } finally {
      stack.bridge.faults.clear();
    }
    expect(res!.status).toBe(503);
    const { error } = (await res!.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("redis_unavailable");
    expect(error.message).toContain("may or may not");
    expect(await stored(channel)).toEqual([[expect.any(String), '"x"']]);
  });

  it("answers a repeat with the same Idempotency-Key 200 with the first ids, adding nothing", async () => {
    const headers = { "idempotency-key": "lost-2" };
    const body = { messages: [{ data: 1 }, { data: 2 }] };
    const match = runsScript(PUBLISH_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 1 });
    const first = await stack.post(`/v1/channels/${channel}/messages`, body, headers);
    expect(first.status).toBe(201);
    const { ids } = (await first.json()) as { ids: string[] };

    const again = await stack.post(`/v1/channels/${channel}/messages`, body, headers);
    expect(again.status).toBe(200);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual({ ids });
    expect((await stored(channel)).map(([id]) => id)).toEqual(ids);
  });
});

describe("a publish refused before it ran", () => {
  it("is stored once and answered 201 with its ids", async () => {
    const match = runsScript(PUBLISH_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "refuse", match, times: 1 });
    let ids: string[] = [];
    const injected = await injectedDuring(stack, async () => {
      ids = await publish(stack, channel, [{ data: "x" }, { data: "y" }]);
    });
    expect(injected.refuse).toBe(1);
    expect(await stored(channel)).toEqual([
      [ids[0], '"x"'],
      [ids[1], '"y"'],
    ]);
  });
});

/** Waits until nobody delivers to the subscription and nothing is left: its deliverer let go. */
const settledIn = (name: string, timeoutMs = 5000) =>
  until(`${channel}/${name} settled`, () => settled(stack, channel, name), timeoutMs);

/** [id, attempt] of every message the receiver got, in arrival order. */
const attempts = (r: TestReceiver) => r.messages().map((m) => [m.id, m.attempt]);

/** Pairs in a stable order: requests of one subscription may go out side by side. */
const sorted = (pairs: (string | number)[][]) =>
  [...pairs].sort((a, b) => String(a).localeCompare(String(b)));

/**
 * The attempt log holds each request the receiver got, once. Written by the isolate's ledger
 * (worker/ledger.ts) within a second of the run, with the run's counters, in one script: once
 * the records are there, so are the counters.
 */
async function loggedOnce(name: string, r: TestReceiver) {
  const expected = sorted(requestKeys(r.requests));
  const logged = async () => recordKeys(await attemptLog(stack, channel, name));
  await until("the records written", async () => (await logged()).length >= expected.length);
  expect(sorted(await logged())).toEqual(expected);
}

/** The subscription's delivery counters as GET /v1/metrics shows them. */
async function countersOf(name: string) {
  const { samples } = await scrapeMetrics(stack);
  const at = (extra = "") => labelsOf(channel, name, extra);
  return {
    delivered: samples.get(`streamhook_messages_delivered_total${at()}`),
    success: samples.get(`streamhook_delivery_attempts_total${at('result="success"')}`),
    failed: samples.get(`streamhook_delivery_attempts_total${at('result="http_5xx"')}`),
  };
}

describe("a take whose reply is lost", () => {
  // The kick's first take takes all 12 (ten batches' worth); with 50 and batches of 5, a second
  // take comes once most requests ended, carrying their acks and records. Dropped, the take and
  // what it carried ran; refused, none of it did.
  it.each([
    { which: "the first take of a run", messages: 12, nthTake: 1, kind: "drop-reply" },
    {
      which: "a later take carrying acks and records",
      messages: 50,
      nthTake: 2,
      kind: "drop-reply",
    },
    {
      which: "a later take carrying acks and records, refused before it ran",
      messages: 50,
      nthTake: 2,
      kind: "refuse",
    },
  ] as const)(
    "loses no message and counts nothing twice: $which",
    async ({ messages, nthTake, kind }) => {
      await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 5 });
      const group = await groupOf(stack, channel, "sub");
      const match = nth(runsScript(TAKE_LUA, stack.keys.channel(channel)), nthTake);
      stack.bridge.faults.add({ kind, match, times: 1 });
      let ids: string[] = [];
      const injected = await injectedDuring(stack, async () => {
        ids = await publish(
          stack,
          channel,
          Array.from({ length: messages }, (_, i) => ({ data: i })),
        );
        await receiver.waitFor((r) => r.acceptedIds().length >= messages, 5000);
        await settledIn("sub");
      });
      expect(injected[kind]).toBe(1);
      // Each once, at attempt 1: the lost take's messages recovered at once, not redelivered.
      expect(sorted(attempts(receiver))).toEqual(sorted(ids.map((id) => [id, 1])));
      expect(await stranded(stack, channel, { sub: group })).toEqual([]);
      // The lost take carried the records of the requests before it: logged once each.
      await loggedOnce("sub", receiver);
      expect(await countersOf("sub")).toEqual({
        delivered: messages,
        success: receiver.requests.length,
        failed: 0,
      });
    },
  );
});

describe("the last write of a run, whose reply is lost", () => {
  // The run's last round trip is its final take (three messages: one take reads them, the
  // final one acks them and finds nothing). Dropped, it ran (and let its reader go); refused, it
  // never ran (its acks included).
  it.each([
    { kind: "drop-reply" as const, ran: "ran" },
    { kind: "refuse" as const, ran: "never ran" },
  ])("strands nothing and delivers each message once when it $ran ($kind)", async ({ kind }) => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const match = nth(runsScript(TAKE_LUA, stack.keys.channel(channel)), 2);
    stack.bridge.faults.add({ kind, match, times: 1 });
    let ids: string[] = [];
    const injected = await injectedDuring(stack, async () => {
      ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }]);
      await receiver.waitFor((r) => r.acceptedIds().length >= 3);
      await settledIn("sub");
    });
    expect(injected[kind]).toBe(1);
    expect(attempts(receiver)).toEqual(ids.map((id) => [id, 1]));
    await loggedOnce("sub", receiver);
    expect(await countersOf("sub")).toEqual({ delivered: 3, success: 1, failed: 0 });
  });

  it("recovers at once, at attempt 1, what its take found published meanwhile", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const published = gate();
    receiver.respond(async (req) => {
      if (req.n === 1) await published.opened; // held until the next publish is done
      return { status: 204 };
    });
    // The run's last round carries its acks and a take, which finds the later messages: its
    // reply is lost after they were taken.
    stack.bridge.faults.add({
      kind: "drop-reply",
      match: nth(runsScript(TAKE_LUA, stack.keys.channel(channel)), 2),
      times: 1,
    });
    let ids: string[] = [];
    const injected = await injectedDuring(stack, async () => {
      ids = await publish(stack, channel, [{ data: 1 }]);
      await receiver.waitFor((r) => r.requests.length === 1);
      ids.push(...(await publish(stack, channel, [{ data: 2 }, { data: 3 }])));
      published.open();
      // Not after their visibility timeout (2 x 10 s + 5 s): the repeat takes them again.
      await receiver.waitFor((r) => r.acceptedIds().length >= 3, 5000);
      await settledIn("sub");
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(sorted(attempts(receiver))).toEqual(sorted(ids.map((id) => [id, 1])));
    await loggedOnce("sub", receiver);
  });

  it("counts a failed request once, and raises its event once", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    receiver.respond({ status: 500, body: "down" });
    const match = runsScript(REPORT_LUA, stack.keys.state(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 1 });
    // Its repeat comes late, while the subscription's other writes go on.
    stack.bridge.faults.add({ kind: "delay", match, times: 1, delayMs: 400 });
    const injected = await injectedDuring(stack, async () => {
      await publish(stack, channel, [{ data: 1 }]);
      await receiver.waitFor((r) => r.requests.length === 1);
      // The visit publishes its subscription.failing event once its last write (repeat
      // included) has returned: then nothing more of it is to come.
      const events = stack.keys.channel("streamhook.events");
      await until("the visit's failing event", async () => {
        const entries = await stack.redis.xrange(events, "-", "+");
        return entries.some(([, fields]) => fields.join(" ").includes(`"channel":"${channel}"`));
      });
    });
    expect(injected["drop-reply"]).toBe(1);
    expect(injected.delay).toBe(1);
    await loggedOnce("sub", receiver);
    const [record] = await attemptLog(stack, channel, "sub");
    expect(record).toMatchObject({ status: 500, error: "HTTP 500", body: "down" });
    expect(await countersOf("sub")).toEqual({ delivered: 0, success: 0, failed: 1 });
    const view = (await (
      await stack.api(`/v1/channels/${channel}/subscriptions/sub`)
    ).json()) as Record<string, unknown>;
    expect(view).toMatchObject({ status: "failing", consecutiveFailures: 1 });
    const events = await stack.redis.xrange(stack.keys.channel("streamhook.events"), "-", "+");
    const failing = events.filter(([, f]) => f.join(" ").includes(`"channel":"${channel}"`));
    expect(failing).toHaveLength(1);
  });
});

// The isolate's ledger (worker/ledger.ts) writes the records and counters of the runs that only
// succeeded, a second after the first of them, with db.redis: a lost reply is repeated, and the
// repeat finds the first write's mark and writes nothing. Refused, the repeat writes it.
describe("the ledger's write, whose reply is lost", () => {
  it.each(["drop-reply", "refuse"] as const)(
    "counts each request and message once (%s)",
    async (kind) => {
      await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 2 });
      const match = runsScript(LEDGER_LUA, stack.keys.state(channel));
      stack.bridge.faults.add({ kind, match, times: 1 });
      const injected = await injectedDuring(stack, async () => {
        // Three publishes in a row: their kicks' runs owe one write.
        for (let i = 0; i < 3; i++) {
          await publish(stack, channel, [{ data: i }, { data: `${i}b` }, { data: `${i}c` }]);
          await receiver.waitFor((r) => r.acceptedIds().length >= 3 * (i + 1));
        }
        await settledIn("sub");
        await loggedOnce("sub", receiver);
      });
      expect(injected[kind]).toBe(1);
      expect(await countersOf("sub")).toEqual({
        delivered: 9,
        success: receiver.requests.length,
        failed: 0,
      });
    },
  );
});

describe("a take that looks for a retry, whose reply is lost", () => {
  it("neither loses the retry nor counts an attempt twice: attempts go 1, 2, 3", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 5 });
    receiver.respond((req) => (req.n <= 2 ? { status: 500 } : { status: 204 }));
    const [id] = await publish(stack, channel, [{ data: "retried" }]);
    await receiver.waitFor((r) => r.requests.length === 1);
    await until("the kick's run is over", () => runsOver(stack, channel, "sub"));
    // The next two takes lose their replies: the first claims the retry (counting its attempt).
    const match = runsScript(TAKE_LUA, stack.keys.channel(channel));
    stack.bridge.faults.add({ kind: "drop-reply", match, times: 2 });
    const injected = await injectedDuring(stack, async () => {
      const started = Date.now();
      while (receiver.acceptedIds().length === 0 && Date.now() - started < 5000) {
        await runPass(stack);
        await sleep(30);
      }
    });
    expect(injected["drop-reply"]).toBe(2);
    expect(attempts(receiver)).toEqual([
      [id, 1],
      [id, 2],
      [id, 3],
    ]);
    await settledIn("sub");
  });
});

describe("a take that fails for one subscription", () => {
  it("does not stop the pass: its other subscriptions are delivered in it", async () => {
    const other = await startReceiver();
    const elsewhere = `${channel}-b`;
    try {
      await subscribe(stack, channel, { name: "a", url: receiver.url });
      await subscribe(stack, elsewhere, { name: "b", url: other.url });
      stack.bridge.faults.add({
        kind: "unavailable",
        match: runsScript(TAKE_LUA, stack.keys.channel(channel)),
      });
      await publish(stack, channel, [{ data: "a" }]);
      const [id] = await publish(stack, elsewhere, [{ data: "b" }]);
      const res = await stack.post("/v1/deliver", undefined);
      expect(res.status, await res.clone().text()).toBe(200);
      const summary = (await res.json()) as {
        subscriptions: { channel: string; error?: string }[];
      };
      expect(summary.subscriptions.find((s) => s.channel === channel)?.error).toMatch(
        /UNAVAILABLE/,
      );
      await other.waitFor((r) => r.acceptedIds().length === 1);
      expect(other.acceptedIds()).toEqual([id]);
      stack.bridge.faults.clear();
      await deliverUntil(stack, channel, () => receiver.acceptedIds().length === 1, "a delivered");
    } finally {
      stack.bridge.faults.clear();
      await other.close();
    }
  });
});

describe("the kick after lost replies", () => {
  it("leaves every unit with pending entries scheduled at all times, and passes deliver everything", async () => {
    const receivers = [receiver, await startReceiver(), await startReceiver()];
    const groups: Record<string, string> = {};
    for (const [i, r] of receivers.entries()) {
      const name = `s${i}`;
      // A short wait per request, so publishes often land while a delivery is under way.
      r.respond({ status: 204, delayMs: 25 });
      await subscribe(stack, channel, { name, url: r.url, batchSize: 3, timeoutMs: 1000 });
      groups[name] = await groupOf(stack, channel, name);
    }
    // The invariant is checked all along, not only at the end: a unit stranded for a moment is
    // stranded for good if no pass comes by before its next kick.
    const violations: UnitState[][] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const found = await stranded(stack, channel, groups);
        if (found.length > 0) violations.push(found);
        await sleep(5);
      }
    })();
    try {
      // Any of the Worker's requests to Redis may lose its reply.
      const before = stack.bridge.faults.injected["drop-reply"];
      stack.bridge.faults.add({ kind: "drop-reply", rate: 0.06, match: () => true });
      const next = mulberry32(7);
      const told: string[] = [];
      let publishing = true;
      // A pass now and then, as the cron would run one, beside the kicks (under faults a pass
      // may answer 5xx).
      const cron = (async () => {
        while (publishing) {
          await stack.post("/v1/deliver", undefined);
          await sleep(150);
        }
      })();
      for (let i = 0; i < 100; i++) {
        const messages = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, j) => ({
          data: { i, j },
        }));
        const res = await stack.post(`/v1/channels/${channel}/messages`, { messages });
        // 503: Redis stopped answering; stored or not, the publisher was not told.
        expect([201, 503]).toContain(res.status);
        if (res.status === 201) told.push(...((await res.json()) as { ids: string[] }).ids);
        await sleep(10 + Math.floor(next() * 30));
      }
      publishing = false;
      await cron;
      const injected = stack.bridge.faults.injected["drop-reply"] - before;
      stack.bridge.faults.clear();

      // Passes deliver the rest: what a kick left behind, and retries.
      const all = async () => (await stored(channel)).map(([id]) => id);
      const delivered = async () => {
        const ids = await all();
        return receivers.every((r) => ids.every((id) => r.answeredIds().includes(id)));
      };
      const started = Date.now();
      while (Date.now() - started < 20_000) {
        if ((await delivered()) && (await scheduledOn(stack, channel)).length === 0) break;
        await stack.post("/v1/deliver", undefined);
        await sleep(50);
      }
      watching = false;
      await watcher;

      expect(injected).toBeGreaterThan(10);
      expect(violations).toEqual([]);
      const ids = await all();
      expect(ids).toEqual(expect.arrayContaining(told));
      for (const [i, r] of receivers.entries()) {
        expect(new Set(r.answeredIds()), `s${i}`).toEqual(new Set(ids));
        expect(await pendingCount(stack, channel, `s${i}`), `s${i}`).toBe(0);
      }
      expect(await scheduledOn(stack, channel)).toEqual([]);
    } finally {
      watching = false;
      await watcher;
      for (const r of receivers.slice(1)) await r.close();
    }
  }, 40_000);
});
