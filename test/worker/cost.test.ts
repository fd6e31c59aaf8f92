import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LATENCY_LE } from "../../shared/counters.ts";
import { loadScripts } from "../helpers/faults.ts";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { countCommands } from "../helpers/redis-server.ts";
import { type Stack, startStack } from "../helpers/stack.ts";
import { publish, runPass, subscribe } from "../helpers/subscriptions.ts";

// Upstash bills every command, those inside Lua scripts included: these count Redis' own
// commandstats around one step. No kick, so each step is exactly what it says.
let stack: Stack;
let receiver: TestReceiver;
beforeAll(async () => {
  // No trim comes due in these (lua/trim.ts), and no event is published (a failure raises one):
  // each counts exactly what it names. The scripts are loaded, so each call is one EVALSHA.
  stack = await startStack({
    vars: { KICK_ON_PUBLISH: "false", TRIM_MIN_INTERVAL_MS: "3600000", EVENTS_CHANNEL: "none" },
  });
  receiver = await startReceiver();
  await loadScripts(stack);
});
afterAll(async () => {
  await receiver?.close();
  await stack?.stop();
});

async function subscribeMany(channel: string, from: number, to: number) {
  const names = Array.from({ length: to - from }, (_, i) => `s${from + i}`);
  for (let i = 0; i < names.length; i += 50) {
    await Promise.all(
      names.slice(i, i + 50).map((name) => subscribe(stack, channel, { name, url: receiver.url })),
    );
  }
}

async function publishMany(channel: string, count: number) {
  for (let i = 0; i < count; i += 1000) {
    const n = Math.min(1000, count - i);
    await publish(
      stack,
      channel,
      Array.from({ length: n }, (_, j) => ({ data: { n: i + j } })),
    );
  }
}

describe("an idle pass", () => {
  it("costs the same one command with 10 and with 1,000 subscriptions", async () => {
    await subscribeMany("idle", 0, 10);
    const with10 = await countCommands(stack.redis, () => runPass(stack));
    await subscribeMany("idle", 10, 1000);
    const with1000 = await countCommands(stack.redis, () => runPass(stack));
    expect(with10.byCommand).toEqual({ zrange: 1 });
    expect(with1000).toEqual(with10);
  }, 60_000);
});

describe("delivery", () => {
  // The records of the requests go to the isolate's ledger (worker/ledger.ts), written with the
  // run's counters once, at the pass's end: one XADD per ten requests. One per request, they were
  // 200 of 346 commands at batch size 1 (1.73 per message), and 1 of every 2.1 at batch size 100;
  // one per take that acked, 20 of 217.
  it("costs at most 0.02 commands per message at batch size 100", async () => {
    await subscribe(stack, "batch100", { name: "sub", url: receiver.url, batchSize: 100 });
    await publishMany("batch100", 10_000);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(10_000);
    });
    // 100 requests; their records, ten to an XADD; the ledger's write at the pass's end (its
    // ~10 commands are 0.001 per message of this backlog).
    expect(counted.byCommand.xadd).toBe(10);
    expect(counted.byCommand.hincrby).toBeLessThanOrEqual(2 + LATENCY_LE.length);
    expect(counted.total / 10_000).toBeLessThanOrEqual(0.02);
  });

  it("costs at most 1.5 commands per message at batch size 1", async () => {
    await subscribe(stack, "batch1", { name: "sub", url: receiver.url, batchSize: 1 });
    await publishMany("batch1", 200);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(200);
    });
    // 200 requests; takes of ten batches at a time with their acks; the ledger's write at the
    // pass's end: the records, ten to an XADD, and the run's counters.
    expect(counted.byCommand.xadd).toBe(20);
    expect(counted.byCommand.hincrby).toBeLessThanOrEqual(2 + LATENCY_LE.length);
    expect(counted.total / 200).toBeLessThanOrEqual(1.5);
  });

  // The bench's "100 new subscriptions of 20 messages at batch 1", one of them. The window
  // starts at 2, and a run alone under it takes ahead (lua/take.ts: room), sized by the window
  // its next take leaves (worker/drive.ts): as few takes as with a fixed cap; and, with nobody
  // to tell, writes its growth once, at its end (worker/window.ts). Main, with a fixed cap,
  // costs the same but the window's 3; before a lone run took ahead, its takes followed the
  // window, one or two messages each: 90 to 97 in all.
  it("costs a new subscription 3 commands more for its window over its first 20 messages at batch size 1", async () => {
    await subscribe(stack, "new20", { name: "sub", url: receiver.url, batchSize: 1 });
    await publishMany("new20", 20);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(20);
    });
    // The report's latency buckets depend on the timing: counted apart.
    const { hincrby = 0, ...byCommand } = counted.byCommand;
    expect(byCommand).toEqual({
      // The pass.
      zrange: 1,
      zmscore: 1,
      // The pass's HMGET; the window read on the first take, and written there as it was not
      // yet (HSET, beside the ledger's); grown by the run's successes at its end. The ledger's
      // write: the subscription (is it still the one delivered to?) and its state (was a failure
      // reported since the success?).
      hmget: 4,
      hset: 2,
      hincrbyfloat: 1,
      // Four takes and the last: the first reads 6 (the run's slots; the window sends 2 of
      // them), each later one as much as the window its successes make lets it send and hold
      // ahead; all but the first carry acks; the last reads nothing, removes the wake and retry
      // members (one ZREM), and deletes the reader. The ledger's write at the pass's end
      // (EVALSHA, GET, SET).
      evalsha: 6,
      xpending: 5,
      xreadgroup: 5,
      xack: 4,
      zadd: 4,
      zscore: 2,
      zrem: 1,
      "xgroup|delconsumer": 1,
      get: 1,
      set: 1,
      // The requests' records: 20, two XADDs.
      xadd: 2,
    });
    expect(counted.total - hincrby).toBe(41);
    expect(hincrby).toBeLessThanOrEqual(2 + LATENCY_LE.length);
  });
});

// What one run costs, command by command: the pass that finds it, a take, its last take, and the
// write of what it owes the isolate's ledger (worker/ledger.ts: the request's record, the run's
// counters and state), at the pass's end: one per pass or per second of an isolate's runs,
// whichever comes first, however many runs it holds. A run with more than a success to tell
// writes its report at once, with its records (lua/report.ts). Messages published in one request share
// their publish millisecond, and one POST answers them all at once: one latency, one bucket.
describe("one run, command by command", () => {
  it("costs 28 for a batch of 100 in one request, its ledger's write alone", async () => {
    await subscribe(stack, "one100", { name: "sub", url: receiver.url, batchSize: 100 });
    await publishMany("one100", 100);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(100);
    });
    expect(counted.byCommand).toEqual({
      // The pass: what is due, the subscription, its schedule.
      zrange: 1,
      zmscore: 1,
      // The pass's HMGET (the subscription), and the window's (lua/take.ts): read on the run's
      // first take, and written there as it was not yet (HSET); grown by the success on the
      // last take (HINCRBYFLOAT). Once it is at maxConcurrency, a run only reads it once.
      // The ledger's: the subscriptions it writes for (still the ones delivered to?), and their
      // state (a failure reported since the success keeps `failures`).
      hmget: 4,
      hincrbyfloat: 1,
      // The take (lua/take.ts): the cap's XPENDING, a read in two slices (32 while no size is
      // known, then the 68 left at the size seen), the retry member covering them (a push
      // reader's entries need no lease: their visibility counts from the read).
      // The last take: the acks, a read that finds nothing (the wake member due: ZSCORE), the
      // wake and retry members removed in one ZREM (nothing pending), the reader deleted.
      // EVALSHA: both, and the ledger's.
      evalsha: 3,
      xpending: 2,
      xreadgroup: 3,
      zadd: 1,
      xack: 1,
      zscore: 1,
      zrem: 1,
      "xgroup|delconsumer": 1,
      // The ledger's write (lua/ledger.ts): once by its write id (GET, then SET), the request's
      // record, the counters (success, the latency bucket, the latency sum), the state.
      xadd: 1,
      get: 1,
      set: 1,
      hincrby: 3,
      // The state (lastSuccessAt, lastAckedId, failures), and the window's first write.
      hset: 2,
    });
    expect(counted.total).toBe(28);
  });

  it("costs 25 for a failed request", async () => {
    const failing = await startReceiver();
    try {
      failing.respond({ status: 500 });
      await subscribe(stack, "fails", { name: "sub", url: failing.url });
      await publishMany("fails", 10);
      const counted = await countCommands(stack.redis, async () => {
        expect((await runPass(stack)).delivered).toBe(0);
      });
      expect(counted.byCommand).toEqual({
        zrange: 1,
        zmscore: 1,
        // The pass's, and the window's on the take (then written, as it was not yet: HSET). A
        // 500 is no congestion, and the last take takes nothing: the window is not touched again.
        hmget: 2,
        // The take: the cap, one read, the cover. The last take: the batch nacked to
        // its retry time (XCLAIM to the waiting room), the pending list's summary and scan for
        // the retry member's exact time, the reader deleted. The wake member held back until
        // the retry (ZADD GT).
        evalsha: 3,
        xpending: 3,
        xreadgroup: 1,
        xclaim: 1,
        zadd: 3,
        "xgroup|delconsumer": 1,
        // The report, written at once (a failure: lua/report.ts), with the request's record
        // (XADD): the failure count (HINCRBY) and failingSince (its first failure), the counter
        // of 5xx answers, the state; and the window's first write. Nothing owed to the ledger.
        xadd: 1,
        get: 1,
        set: 1,
        hget: 1,
        hincrby: 2,
        hset: 3,
      });
      expect(counted.total).toBe(25);
    } finally {
      await failing.close();
    }
  });
});

// A flow key's state is read and written by the takes a run makes anyway (lua/take.ts: flow):
// nothing per request of its own. The same run as "costs 28 for a batch of 100", with a key.
describe("one run under a flow key", () => {
  async function deliverOne(channel: string, flow: Record<string, unknown>) {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, batchSize: 100, ...flow });
    await publishMany(channel, 100);
    return countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(100);
    });
  }
  const withoutKey = { evalsha: 3, get: 1, set: 1 };

  it("costs 4 more with a parallelism: a GET and a SET as its take holds a slot, a GET and a DEL as the last lets go", async () => {
    const counted = await deliverOne("flow-p", { flowKey: "p.example.com", flowParallelism: 2 });
    // The ledger's GET and SET, and the flow's.
    expect(counted.byCommand).toMatchObject({ ...withoutKey, get: 3, set: 2, del: 1 });
    expect(counted.total, JSON.stringify(counted.byCommand)).toBe(28 + 4);
  });

  it("costs 3 more with a rate only: a GET and a SET as its take reserves a slot, a GET at the last", async () => {
    const counted = await deliverOne("flow-r", { flowKey: "r.example.com", flowRate: 10 });
    expect(counted.byCommand).toMatchObject({ ...withoutKey, get: 3, set: 2 });
    expect(counted.byCommand.del).toBeUndefined();
    expect(counted.total, JSON.stringify(counted.byCommand)).toBe(28 + 3);
  });

  it("costs at most 2 more per request in a backlog: each take lets go of one and holds the next", async () => {
    await subscribe(stack, "flow-backlog", {
      name: "sub",
      url: receiver.url,
      batchSize: 1,
      flowKey: "backlog.example.com",
      flowParallelism: 2,
    });
    await publishMany("flow-backlog", 40);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(40);
    });
    // The run's report is the one other GET and SET; a take that changes nothing writes nothing.
    const { get = 0, set = 0, del = 0, evalsha = 0 } = counted.byCommand;
    const flow = get + set + del - 2;
    expect(flow, JSON.stringify(counted.byCommand)).toBeLessThanOrEqual(2 * 40 + 2);
    // One GET per take, none beside them.
    expect(get - 1).toBeLessThanOrEqual(evalsha);
  });
});

describe("publishing to a channel with an idle subscriber", () => {
  it("costs 5 commands: the script, XADD, HGETALL (the roster: none cached after a subscribe), and ZMSCORE + ZADD to wake it", async () => {
    await subscribe(stack, "wakes", { name: "sub", url: receiver.url });
    const counted = await countCommands(stack.redis, () => publish(stack, "wakes", [{ data: 1 }]));
    expect(counted.byCommand).toEqual({ evalsha: 1, xadd: 1, hgetall: 1, zmscore: 1, zadd: 1 });
  });

  it("costs 3 once it is already woken: no roster to read (the isolate's copy), nothing to add to the schedule", async () => {
    await subscribe(stack, "woken", { name: "sub", url: receiver.url });
    await publish(stack, "woken", [{ data: 1 }]);
    const counted = await countCommands(stack.redis, () => publish(stack, "woken", [{ data: 2 }]));
    expect(counted.byCommand).toEqual({ evalsha: 1, xadd: 1, zmscore: 1 });
  });
});

// What ordering adds (lua/take.ts: lanes), beside the same run of an unordered subscription.
describe("an ordered subscription's run", () => {
  /** The commands of one pass delivering `messages` to a new subscription, by command. */
  async function runOf(channel: string, sub: Record<string, unknown>, messages: object[]) {
    await runPass(stack); // what earlier tests left due: out of the count
    await subscribe(stack, channel, { name: "sub", url: receiver.url, ...sub });
    await publish(stack, channel, messages as { data: unknown }[]);
    const counted = await countCommands(stack.redis, async () => {
      expect((await runPass(stack)).delivered).toBe(messages.length);
    });
    return counted;
  }
  const difference = (a: Record<string, number>, b: Record<string, number>) =>
    Object.fromEntries(
      [...new Set([...Object.keys(a), ...Object.keys(b)])]
        .map((name) => [name, (a[name] ?? 0) - (b[name] ?? 0)])
        .filter(([, n]) => n !== 0),
    );

  it("adds 10 commands to a request of 10 keys: the lanes, and a take for the acks", async () => {
    const messages = Array.from({ length: 10 }, (_, i) => ({ data: i, orderingKey: `k${i}` }));
    const plain = await runOf("keys10", { batchSize: 10 }, messages);
    const ordered = await runOf("keys10o", { batchSize: 10, ordered: true }, messages);
    expect(difference(ordered.byCommand, plain.byCommand)).toEqual({
      // The read: the lanes of its keys (HMGET), the new heads written (HSET). The acks: the
      // heads' keys (HMGET #<id>), their lanes (HMGET), the emptied lanes deleted (HDEL).
      hmget: 3,
      hset: 1,
      hdel: 1,
      // The acks go in a take of their own before the final round (worker/drive.ts: they may
      // hand out their keys' next), which finds nothing: the cap, a read, the wake member
      // (ZSCORE), removed there on its own (ZREM); the plain run's last take removes it with
      // the retry member in one.
      evalsha: 1,
      xpending: 1,
      xreadgroup: 1,
      zscore: 1,
      zrem: 1,
    });
    expect(ordered.total - plain.total).toBe(10);
  });

  it("sends one key's 10 messages one a request, a take of 13 commands each after the first", async () => {
    const messages = Array.from({ length: 10 }, (_, i) => ({ data: i, orderingKey: "one" }));
    const plain = await runOf("fifo", { batchSize: 10 }, messages);
    const ordered = await runOf("fifoo", { batchSize: 10, ordered: true }, messages);
    // The latency buckets the report counts depend on the timing: left out.
    const { hincrby: _o, ...orderedCounts } = ordered.byCommand;
    const { hincrby: _p, ...plainCounts } = plain.byCommand;
    expect(difference(orderedCounts, plainCounts)).toEqual({
      // Nine more requests: their records, written with the first's in one XADD (the ledger's).
      // Nine more takes, each carrying the last request's ack (XACK; the head's key and lane:
      // 2 HMGET; the next head handed out: XCLAIM; the lane written: HSET, HDEL of the old
      // head's #id), the cap's XPENDING, a read that finds nothing (XREADGROUP, the wake
      // member's ZSCORE and its busy ZADD XX), the retry member covering the new head (ZADD).
      evalsha: 9 + 1,
      xack: 9,
      hmget: 9 * 2 + 3,
      xclaim: 9 + 1,
      hset: 9 + 1,
      hdel: 9 + 1,
      xpending: 9 + 1,
      xreadgroup: 9 + 1,
      zscore: 9 + 1,
      zadd: 9 * 2,
      // Ten requests where the plain run makes one, and the same window's cost: a run alone
      // writes its window's growth once, at its end (worker/window.ts).
      // Beside them, the first read's lanes (HMGET, HSET: the head; XCLAIM: nine parked), and the
      // last ack's take (2 HMGET, HDEL: the lane gone; it finds nothing, and removes the wake
      // member on its own: ZREM), as in the test above.
      zrem: 1,
    });
  });
});
