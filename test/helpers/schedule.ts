// Waiting on what the stack shows instead of on a guessed sleep: a unit's due times in {p}:due,
// its readers, its pending list. A test about timing reads when something is due and waits for the
// clock to pass that time (dueAt, waitUntil in subscriptions.ts); a test waiting for work to end
// polls the state that work changes.

import { PARKED, WAITING_ROOM } from "../../shared/engine/queue.ts";
import {
  isSubscriptionField,
  parseDueMember,
  pullField,
  retryMember,
  stateField,
  type Unit,
  wakeMember,
} from "../../shared/keys.ts";
import type { Stack } from "./stack.ts";
import { dueAt, groupOf, type PassSummary, runPass, sleep, waitUntil } from "./subscriptions.ts";

const POLL_MS = 10;

/** The channel unit of a subscription (its consumer group on the channel's stream). */
export const mainUnit = (channel: string, subscription: string): Unit => ({
  channel,
  subscription,
  kind: "main",
});

/** When the subscription's channel unit is due for a retry; null when nothing waits for one. */
export const retryDueAt = (stack: Stack, channel: string, sub: string) =>
  dueAt(stack, retryMember(mainUnit(channel, sub)));

/** When the subscription's channel unit is due to read; null when nothing wakes it. */
export const wakeDueAt = (stack: Stack, channel: string, sub: string) =>
  dueAt(stack, wakeMember(mainUnit(channel, sub)));

/** Polls `check` until it holds; throws naming `what` after `timeoutMs`. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() >= deadline) throw new Error(`not true after ${timeoutMs} ms: ${what}`);
    await sleep(POLL_MS);
  }
}

/**
 * Waits until the subscription's retry is due (its retry member's score, read from Redis), then
 * runs a pass, and returns the first that did something. The score is the Worker's clock plus
 * the delay, while the entries' idle time counts from when the script ran in Redis, a request's
 * latency later: a pass right at the score may find them not yet visible (the engine then sets
 * the member to their exact time), so that pass, which did nothing, is followed by another at
 * the member's new time. Throws when no retry is scheduled.
 */
export async function passWhenRetryDue(stack: Stack, channel: string, sub: string) {
  let at = await retryDueAt(stack, channel, sub);
  if (at === null) throw new Error(`${channel}/${sub} has no retry scheduled`);
  for (let tries = 1; ; tries++) {
    await waitUntil(at);
    const pass = await timedPass(stack);
    if (pass.delivered + pass.retried + pass.deadLettered + pass.filtered > 0 || tries === 5)
      return pass;
    at = await retryDueAt(stack, channel, sub);
    // No retry left, or the next one a backoff away: that pass was the retry's.
    if (at === null || at > Date.now() + 1_000) return pass;
  }
}

/** A gate a scripted reply can wait on: `open()` lets every waiter through. */
export function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/**
 * How many delivery members (wake, retry) {p}:due holds, whatever their channel; its timers (a
 * channel's sweep: worker/sweep.ts) left out.
 */
export async function deliveriesScheduled(stack: Stack): Promise<number> {
  const members = await stack.redis.zrange(stack.keys.due(), "0", "-1");
  return members.filter((member) => parseDueMember(member) !== null).length;
}

/** The earliest due time among the channel's {p}:due members; null when it has none. */
export async function nextDueOn(stack: Stack, channel: string): Promise<number | null> {
  const flat = await stack.redis.zrange(stack.keys.due(), "0", "-1", "WITHSCORES");
  let next: number | null = null;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    if (parseDueMember(flat[i]!)?.unit.channel !== channel) continue;
    const at = Number(flat[i + 1]);
    if (next === null || at < next) next = at;
  }
  return next;
}

/**
 * Runs passes until `done()` holds, each when the channel's next unit is due (its score in
 * {p}:due, waited for, not guessed); throws naming `what` if it still does not after `timeoutMs`.
 * `pass` replaces the plain POST /v1/deliver (to measure each pass, say).
 */
export async function deliverUntil(
  stack: Stack,
  channel: string,
  done: () => Promise<boolean> | boolean,
  what: string,
  options: { timeoutMs?: number; pass?: () => Promise<unknown> } = {},
): Promise<void> {
  const { timeoutMs = 5_000, pass = () => runPass(stack) } = options;
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() >= deadline) throw new Error(`not true after ${timeoutMs} ms: ${what}`);
    const next = await nextDueOn(stack, channel);
    // Nothing due on the channel: a delivery started elsewhere (a kick, a wake) is still going.
    if (next === null) await sleep(POLL_MS);
    else await waitUntil(Math.min(next, deadline));
    await pass();
  }
}

/** The subscription's pending entry ids on the channel (XPENDING's detail form). */
export async function pendingIds(stack: Stack, channel: string, sub: string): Promise<string[]> {
  const group = await groupOf(stack, channel, sub);
  const rows = (await stack.redis.xpending(stack.keys.channel(channel), group, "-", "+", 1000)) as [
    string,
    ...unknown[],
  ][];
  return rows.map((row) => row[0]);
}

/** No deliverer of the subscription is at work on that queue (see readersOf). */
export const runsOver = async (
  stack: Stack,
  channel: string,
  sub: string,
  kind: Unit["kind"] = "main",
) => (await readersOf(stack, channel, sub, kind)).length === 0;

/**
 * The isolate's ledger (worker/ledger.ts) has written what the subscription's runs that succeeded
 * owed: its lastSuccessAt is there. A publish's kick writes it within a second of its run.
 */
export const ledgerWritten = (stack: Stack, channel: string, sub: string) =>
  until(`${channel}/${sub}'s ledger written`, async () => {
    const at = await stack.redis.hget(stack.keys.state(channel), stateField(sub, "lastSuccessAt"));
    return at !== null;
  });

/**
 * Nobody is delivering to the subscription and nothing is left to deliver: no due member, nothing
 * pending, nothing unread, and no deliverer at work (runsOver). Every deliverer holds its reader
 * while it sends, so once this holds, a duplicate that was going to be sent has been sent.
 */
export async function settled(stack: Stack, channel: string, sub: string): Promise<boolean> {
  const unit = mainUnit(channel, sub);
  const group = await groupOf(stack, channel, sub);
  const [wake, retry, groups, over] = await Promise.all([
    stack.redis.zscore(stack.keys.due(), wakeMember(unit)),
    stack.redis.zscore(stack.keys.due(), retryMember(unit)),
    stack.redis.xinfo("GROUPS", stack.keys.channel(channel)) as Promise<unknown[][]>,
    runsOver(stack, channel, sub),
  ]);
  const info = groups.find((g) => g[1] === group);
  if (!info) return false;
  // lag is null while Redis cannot tell (after a replay moved the cursor): not known to be 0.
  const field = (name: string) => info[info.indexOf(name) + 1];
  const caughtUp = field("pending") === 0 && field("lag") === 0;
  return wake === null && retry === null && caughtUp && over;
}

/**
 * The readers in the subscription's group on one of its queues (the channel, or its redrive
 * stream), the waiting room left out: each is a deliverer run still going (a run deletes its
 * reader with its last write). Empty when the queue or its group does not exist.
 */
export async function readersOf(
  stack: Stack,
  channel: string,
  sub: string,
  kind: Unit["kind"] = "main",
): Promise<string[]> {
  const group = await groupOf(stack, channel, sub);
  const stream = stack.keys.unitStream({ channel, subscription: sub, kind });
  const consumers = await (
    stack.redis.xinfo("CONSUMERS", stream, group) as Promise<unknown[][]>
  ).catch(() => []);
  return consumers
    .map((c) => String(c[1]))
    .filter((name) => name !== WAITING_ROOM && name !== PARKED);
}

/** Nobody delivers to the subscription: no reader in its group on the channel nor on redrive. */
export async function noDeliverer(stack: Stack, channel: string, sub: string): Promise<boolean> {
  const [main, redrive] = await Promise.all([
    readersOf(stack, channel, sub, "main"),
    readersOf(stack, channel, sub, "redrive"),
  ]);
  return main.length === 0 && redrive.length === 0;
}

/**
 * Some push subscription, on any channel of the registry, is being delivered to: a reader in one
 * of its groups. (A pull subscription's consumers are named by whoever pulls, and stay.)
 */
export async function anyDeliverer(stack: Stack): Promise<boolean> {
  for (const channel of await stack.redis.smembers(stack.keys.channels())) {
    const fields = await stack.redis.hkeys(stack.keys.subscriptions(channel));
    const push = fields.filter((f) => isSubscriptionField(f) && !fields.includes(pullField(f)));
    for (const sub of push) {
      // Deleted meanwhile: its groups went with it.
      const idle = await noDeliverer(stack, channel, sub).catch(() => true);
      if (!idle) return true;
    }
  }
  return false;
}

/** One pass (POST /v1/deliver), with when it started and ended by the Worker's clock (ms). */
export async function timedPass(stack: Stack) {
  const summary = (await runPass(stack)) as PassSummary & { startedAt: string; durationMs: number };
  const startedAt = Date.parse(summary.startedAt);
  return { ...summary, startedAt, endedAt: startedAt + summary.durationMs };
}
