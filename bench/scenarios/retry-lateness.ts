// 7. Retry lateness, no manual pass: messages published at a steady rate to subscribers that
// fail half their requests (500), on the Worker as deployed (kick + queue; the bench gives it a
// 1 s retry base so that a run sees several retries per message). Every retry is compared with
// when it was due: the previous attempt's time plus the Worker's own backoff for it
// (worker/retry.ts: deterministic, a hash of the subscription and the attempt). The receiver
// notes an attempt when its request arrives, a millisecond or two after the Worker's clock
// started it, so a figure here is that much under the true lateness.

import { retryDelayMs } from "../../worker/retry.ts";
import { maxOf, percentile, round, waitUntil } from "../measure.ts";
import { opsBetween } from "../queue-ops.ts";
import type { BenchStack } from "../stack.ts";
import { publishAtRate, SECRET, subscribeAll } from "./sustained.ts";

export interface RetryLatenessResult {
  subscriptions: number;
  messages: number;
  retries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Retries that came before they were due (a bug if ever > 0). */
  early: number;
  /** Messages neither delivered nor dead-lettered at the end. */
  missing: number;
  queueOpsPerMessage: number;
}

export async function retryLatenessScenario(
  stack: BenchStack,
  options: {
    subscriptions: number;
    ratePerSecond: number;
    seconds: number;
    failureRate: number;
    maxAttempts: number;
    policy: { retryBaseMs: number; retryMaxMs: number };
  },
): Promise<RetryLatenessResult> {
  const channel = "lateness";
  const names = Array.from({ length: options.subscriptions }, (_, i) => `s${i}`);
  const receiver = (name: string) => `${channel}-${name}`;
  await subscribeAll(
    stack.kicked,
    channel,
    names.map((name) => ({
      name,
      url: stack.receivers.add(receiver(name), SECRET, {
        failureRate: options.failureRate,
        trackAttempts: true,
      }),
    })),
    { batchSize: 10, maxAttempts: options.maxAttempts },
  );
  const opsBefore = stack.queueOps();
  const { messages } = await publishAtRate(stack.kicked, channel, {
    ratePerSecond: options.ratePerSecond,
    seconds: options.seconds,
    perPublish: 1,
  });
  const dead = async () => {
    let sum = 0;
    for (const name of names) sum += await stack.redis.xlen(stack.keys.deadLetters(channel, name));
    return sum;
  };
  const settled = async () => {
    const received = names.reduce((n, name) => n + stack.receivers.received(receiver(name)), 0);
    return received + (await dead()) >= messages * names.length;
  };
  let done = false;
  // An endpoint that fails a batch stops its unit (it backs off and reads nothing new), so a
  // backlog builds behind it and drains one batch at a time, each up to maxAttempts retries
  // apart: minutes on a loaded machine, not one message's worst case.
  const worst = 3 * (options.policy.retryMaxMs * options.maxAttempts + 30_000);
  const watch = setInterval(async () => {
    done = await settled();
  }, 200);
  try {
    await waitUntil("every message delivered or dead-lettered", () => done, worst);
  } finally {
    clearInterval(watch);
  }
  const ops = opsBetween(opsBefore, stack.queueOps());

  const late: number[] = [];
  for (const name of names) {
    for (const attempts of stack.receivers.attempts(receiver(name)).values()) {
      for (let k = 1; k < attempts.length; k++) {
        const previous = attempts[k - 1]!;
        const due = previous.at + retryDelayMs(previous.attempt, name, options.policy);
        late.push(attempts[k]!.at - due);
      }
    }
  }
  const received = names.reduce((n, name) => n + stack.receivers.received(receiver(name)), 0);
  return {
    subscriptions: options.subscriptions,
    messages: messages * names.length,
    retries: late.length,
    p50Ms: percentile(late, 50),
    p99Ms: percentile(late, 99),
    maxMs: maxOf(late),
    early: late.filter((ms) => ms < -5).length,
    missing: messages * names.length - received - (await dead()),
    queueOpsPerMessage: round(ops.operations / (messages * names.length), 4),
  };
}
