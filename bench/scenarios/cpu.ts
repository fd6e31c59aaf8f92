// Worker CPU per request: the CPU time the workerd running the Worker spends on one request of
// each kind, beside the free plan's 10 ms per invocation. workerd gives JavaScript no CPU clock,
// so each figure is the process' own counters (bench/cpu.ts) around `requests` sequential
// requests of one kind, minus the same for as many requests that do nothing (GET /nothing-here:
// the runtime's own handling of a request, the floor), divided by `requests`. An upper bound of
// the Worker's own CPU: the runtime's work for the request (its sockets, its event loop, the
// garbage collector) is in it.
//
// All on the Worker without kick or queue (stack.manual), so nothing runs in the background
// between the readings. A publish to a channel without subscriptions wakes nobody, so it costs
// the same on either Worker (with subscribers, the deployed Worker's publish also runs the kick:
// not measured here). Push is driven by delivery passes (POST /v1/deliver), each one invocation
// sending many batches: its figure is per batch, the floor taken off once per pass.

import { CPU_TICK_MS, cpuDuring } from "../cpu.ts";
import { round } from "../measure.ts";
import type { Api, BenchStack } from "../stack.ts";
import { SECRET } from "./sustained.ts";

export interface CpuRow {
  /** What one request (or, for push, one delivered batch) does. */
  what: string;
  /** Requests (push: batches delivered) measured. */
  requests: number;
  /** CPU ms each, the floor taken off. */
  msPerRequest: number;
  /** Delivery passes (invocations) that delivered them: push only. */
  passes?: number;
}

export interface CpuResult {
  /** The CPU clock's resolution (one tick of /proc's counters). */
  tickMs: number;
  /** CPU ms of a request that does nothing, mean of a reading before and after the rows. */
  floorMsPerRequest: number;
  rows: CpuRow[];
}

const BATCH = 100;
const message = (n: number) => ({ data: { n, note: "a typical small event" }, type: "t" });

export async function cpuScenario(
  stack: BenchStack,
  options: { requests: number },
): Promise<CpuResult> {
  const pid = stack.workerdPid("manual");
  const api = stack.manual;
  const n = options.requests;
  const sequential = async (count: number, request: () => Promise<void>) => {
    const { ms } = await cpuDuring(pid, async () => {
      for (let i = 0; i < count; i++) await request();
    });
    return ms;
  };
  const nothing = () =>
    sequential(n, async () => {
      await (await fetch(`${api.base}/nothing-here`)).arrayBuffer();
    });

  const publish = (channel: string, body: unknown) => async () => {
    const res = await api.call("POST", `/v1/channels/${channel}/messages`, body);
    if (res.status !== 201) throw new Error(`publish: ${res.status} ${await res.text()}`);
    await res.arrayBuffer();
  };
  // One of each first, so a script load or a first connection is not what is measured.
  const single = publish("cpu-publish", message(0));
  const batch = publish("cpu-publish", {
    messages: Array.from({ length: BATCH }, (_, i) => message(i)),
  });
  await single();
  await batch();

  // CPU ms over `requests` requests; push: over `requests` batches sent by `passes` requests.
  const readings: { what: string; ms: number; requests: number; passes?: number }[] = [];
  const floorBefore = await nothing();
  readings.push({ what: "Publish, 1 message", ms: await sequential(n, single), requests: n });
  readings.push({
    what: `Publish, batch of ${BATCH}`,
    ms: await sequential(n, batch),
    requests: n,
  });
  readings.push(await push(stack, api, pid, n));
  readings.push({
    what: `Pull, max ${BATCH} (acking the batch before)`,
    ...(await pull(api, pid, n * BATCH)),
  });
  const floor = (floorBefore + (await nothing())) / 2 / n;
  return {
    tickMs: CPU_TICK_MS,
    floorMsPerRequest: round(floor, 3),
    // A push reading made one Worker request per pass, the others one per request.
    rows: readings.map(({ what, ms, requests, passes }) => ({
      what,
      requests,
      msPerRequest: round((ms - floor * (passes ?? requests)) / requests, 3),
      ...(passes === undefined ? {} : { passes }),
    })),
  };
}

/** Fills `channel` with `messages`, 1,000 to a publish. */
async function fill(api: Api, channel: string, messages: number) {
  for (let i = 0; i < messages; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, messages - i) }, (_, j) => message(i + j));
    await api.json("POST", `/v1/channels/${channel}/messages`, { messages: batch });
  }
}

/** `batches` batches of 100 delivered to one receiver by delivery passes. */
async function push(stack: BenchStack, api: Api, pid: number, batches: number) {
  const channel = "cpu-push";
  const receiver = `${channel}-s`;
  const url = stack.receivers.add(receiver, SECRET, { indexed: batches * BATCH });
  await api.json("POST", `/v1/channels/${channel}/subscriptions`, {
    name: "s",
    url,
    secret: SECRET,
    batchSize: BATCH,
  });
  await fill(api, channel, batches * BATCH);
  let passes = 0;
  const { ms } = await cpuDuring(pid, async () => {
    const deadline = Date.now() + 600_000;
    while (stack.receivers.received(receiver) < batches * BATCH) {
      if (Date.now() > deadline) throw new Error(`${channel}: not delivered in 10 minutes`);
      await api.json("POST", "/v1/deliver");
      passes++;
    }
  });
  return {
    what: `Push: a batch of ${BATCH} delivered to a receiver`,
    ms,
    requests: stack.receivers.requests(receiver),
    passes,
  };
}

/**
 * One consumer pulls `messages` with max 100, each pull acking the batch before, until it has
 * them all (a pull may bring fewer than max); returns the CPU ms and the pulls made.
 */
async function pull(api: Api, pid: number, messages: number) {
  const channel = "cpu-pull";
  await api.json("POST", `/v1/channels/${channel}/subscriptions`, {
    name: "work",
    mode: "pull",
    from: "earliest",
  });
  await fill(api, channel, messages);
  const path = `/v1/channels/${channel}/subscriptions/work/pull`;
  let ack: string[] = [];
  const once = async () => {
    const { messages } = await api.json<{ messages: { id: string }[] }>("POST", path, {
      max: BATCH,
      consumer: "c",
      visibilityTimeoutMs: 60_000,
      ack,
    });
    ack = messages.map((m) => m.id);
    return messages.length;
  };
  let taken = 0;
  let requests = 0;
  const { ms } = await cpuDuring(pid, async () => {
    while (taken < messages) {
      const got = await once();
      if (got === 0) throw new Error(`pull took ${taken} of ${messages}`);
      taken += got;
      requests++;
    }
  });
  if ((await once()) !== 0) throw new Error("pull: messages left after the backlog"); // acks the last
  return { ms, requests };
}
