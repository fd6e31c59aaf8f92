// 9. Backlog: `messages` messages waiting for each of `subscriptions` subscribers, drained two
// ways, each on its own channel and backlog:
//
//   passes   back-to-back POST /v1/deliver on the Worker without kick or queue, each pass
//            starting when the previous answered (the fastest a pass-driven deliverer goes)
//   cron     one cron run on the Worker as deployed, and nothing else: it hands every due
//            subscription to the queue, and each visit hands over to the next until the backlog
//            is gone
//
// Target: the cron's drain at >= 0.9x the passes'. The receivers count each message's data.n in a
// bitset (a backlog of millions does not fit in sets of ids), so a message delivered twice shows
// as a repeat, whatever order requests arrive in.

import { closedLoop, counted, round, waitUntil } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { SECRET, subscribeAll } from "./sustained.ts";

export interface DrainRow {
  how: "passes" | "cron";
  seconds: number;
  perSecond: number;
  commandsPerMessage: number;
  queueOpsPerMessage: number;
  repeats: number;
}

export interface BacklogResult {
  messages: number;
  subscriptions: number;
  passes: DrainRow;
  cron: DrainRow;
  /** cron.perSecond / passes.perSecond (target >= 0.9). */
  ratio: number;
}

async function drain(
  stack: BenchStack,
  how: DrainRow["how"],
  options: { messages: number; subscriptions: number; timeoutMs: number },
): Promise<DrainRow> {
  const channel = `backlog-${how}`;
  const names = Array.from({ length: options.subscriptions }, (_, i) => `s${i}`);
  const receiver = (name: string) => `${channel}-${name}`;
  await subscribeAll(
    stack.manual,
    channel,
    names.map((name) => ({
      name,
      url: stack.receivers.add(receiver(name), SECRET, { indexed: options.messages }),
    })),
    { batchSize: 100 },
  );
  // Published without a kick, so that nothing is delivered before the clock starts.
  const per = 1000;
  await closedLoop(Math.ceil(options.messages / per), 4, async (i) => {
    const messages = Array.from({ length: Math.min(per, options.messages - i * per) }, (_, j) => ({
      data: { n: i * per + j, note: "a typical small event" },
      type: "order.created",
    }));
    await stack.manual.json("POST", `/v1/channels/${channel}/messages`, { messages });
  });

  const total = options.messages * options.subscriptions;
  const received = () => names.reduce((n, name) => n + stack.receivers.received(receiver(name)), 0);
  const opsBefore = stack.queueOps();
  const started = performance.now();
  let seconds = 0;
  const { commands } = await counted(stack.redis, async () => {
    const deadline = Date.now() + options.timeoutMs;
    if (how === "passes") {
      while (received() < total) {
        if (Date.now() > deadline) throw new Error(`${channel}: not drained in time`);
        await stack.manual.json("POST", "/v1/deliver");
      }
    } else {
      await stack.cron();
      await waitUntil(`${channel} drained`, () => received() >= total, options.timeoutMs);
    }
    seconds = (performance.now() - started) / 1000;
  });
  const ops = opsBetween(opsBefore, stack.queueOps());
  const repeats = names.reduce((n, name) => n + stack.receivers.repeats(receiver(name)), 0);

  // Frees the backlog's memory for what runs next.
  for (const name of names) {
    await stack.manual.call("DELETE", `/v1/channels/${channel}/subscriptions/${name}`);
  }
  await stack.redis.del(stack.keys.channel(channel));
  return {
    how,
    seconds: round(seconds, 1),
    perSecond: round(total / seconds, 0),
    commandsPerMessage: round(commands / total, 4),
    queueOpsPerMessage: round(ops.operations / total, 6),
    repeats,
  };
}

export async function backlogScenario(
  stack: BenchStack,
  options: { messages: number; subscriptions: number; timeoutMs: number },
): Promise<BacklogResult> {
  const passes = await drain(stack, "passes", options);
  const cron = await drain(stack, "cron", options);
  return {
    messages: options.messages,
    subscriptions: options.subscriptions,
    passes,
    cron,
    ratio: round(cron.perSecond / passes.perSecond, 2),
  };
}
