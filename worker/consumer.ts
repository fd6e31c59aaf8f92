import { asTask, type DeliveryTask, MAX_DELAY_SECONDS } from "./dispatch.ts";
import { visitAll } from "./pass.ts";
import { dueUnits, type Loaded, load } from "./schedule.ts";
import { asTimerTask, runTimer, type TimerTask } from "./timers.ts";
import type { Visited } from "./visit.ts";
import type { Worker } from "./worker.ts";

/** The queue's message, as far as the consumer needs it. */
export interface TaskMessage {
  readonly body: unknown;
  readonly attempts: number;
  ack(): void;
  retry(options?: { delaySeconds?: number }): void;
}

// Visits one invocation runs at once. Most tasks are short (a fan-out's one message, a retry), and
// side by side their Redis calls share requests (auto-pipelining): measured on a 5,000-subscriber
// fan-out, 32 at once deliver in 7 s where 10 take 9 s. Memory stays bounded: the visits' takes
// share READ_MEMORY (batches.ts: readBytesFor). The invocation keeps at most 6 connections open
// at once (shared/meter.ts), so past 6 the requests wait their turn rather than run in parallel.
const CONSUMER_CONCURRENCY = 32;

/**
 * A task that comes this little before its subscription is due waits for it in the invocation.
 * Queues counts delays in whole seconds and the dispatcher rounds down, so a retry's task comes
 * up to a second early; waiting the rest here makes it late by milliseconds, not by a second.
 */
export const EARLY_WAIT_MS = 2_000;

export async function consume(w: Worker, messages: readonly TaskMessage[]): Promise<void> {
  const timers = messages.flatMap((message) => {
    const task = asTimerTask(message.body);
    return task ? [{ task, message }] : [];
  });
  const deliveries = messages.filter((m) => !timers.some((t) => t.message === m));
  await Promise.all([consumeTimers(w, timers), consumeDeliveries(w, deliveries)]);
}

/** Timer tasks (timers.ts): each run when due, one that comes early waiting up to EARLY_WAIT_MS. */
async function consumeTimers(w: Worker, timers: { task: TimerTask; message: TaskMessage }[]) {
  for (const { task, message } of timers) {
    const wait = task.at - w.clock();
    if (wait > EARLY_WAIT_MS) {
      message.retry({ delaySeconds: Math.min(MAX_DELAY_SECONDS, Math.ceil(wait / 1000)) });
      continue;
    }
    if (wait > 0) await w.sleep(wait);
    try {
      await runTimer(w, { kind: task.timer, name: task.name, at: task.at }, w.clock());
      message.ack();
    } catch (error) {
      console.error(`timer task ${task.timer}:${task.name} failed:`, error);
      message.retry({ delaySeconds: failedDelaySeconds(message.attempts) });
    }
  }
}

async function consumeDeliveries(w: Worker, messages: readonly TaskMessage[]): Promise<void> {
  const now = w.clock();
  const tasks = new Map<string, { task: DeliveryTask; messages: TaskMessage[] }>();
  for (const message of messages) {
    const task = asTask(message.body);
    if (!task) {
      console.error("the delivery queue sent a message that is not a task:", message.body);
      message.ack();
      continue;
    }
    const key = `${task.channel}/${task.subscription}`;
    const entry = tasks.get(key) ?? { task, messages: [] };
    entry.messages.push(message);
    tasks.set(key, entry);
  }
  if (tasks.size === 0) return;
  const wanted = [...tasks.values()].map(({ task }) => ({
    channel: task.channel,
    name: task.subscription,
  }));
  const loaded = await load(w.db, wanted);
  const byKey = new Map(loaded.map((l) => [`${l.sub.channel}/${l.sub.name}`, l]));
  const work: { loaded: Loaded; messages: TaskMessage[] }[] = [];
  for (const [key, { messages: ms }] of tasks) {
    const l = byKey.get(key);
    // Deleted or paused since (load dropped its schedule): nothing to do.
    if (!l) {
      for (const m of ms) m.ack();
    } else work.push({ loaded: l, messages: ms });
  }
  const visiting = new Set(work.map(({ loaded: l }) => `${l.sub.channel}/${l.sub.name}`));
  const visited = await withAdoption(w, visiting, Math.min(work.length, CONSUMER_CONCURRENCY), () =>
    visitAll(
      w,
      work.map((x) => x.loaded),
      CONSUMER_CONCURRENCY,
    ),
  );
  // Tasks that came early: visited when due, earliest first, at most CONSUMER_CONCURRENCY at
  // once (their reads share the invocation's memory as the first round's did).
  const early = visited
    .map((v, i) => ({ i, at: v.kind === "not-due" ? v.at : null }))
    .filter((e): e is { i: number; at: number } => e.at !== null && e.at - now <= EARLY_WAIT_MS)
    .sort((a, b) => a.at - b.at);
  const whenDue = async () => {
    for (let e = early.shift(); e; e = early.shift()) {
      const wait = e.at - w.clock();
      if (wait > 0) await w.sleep(wait);
      const { sub } = work[e.i]!.loaded;
      const again = await load(w.db, [{ channel: sub.channel, name: sub.name }]);
      if (again.length > 0) visited[e.i] = (await visitAll(w, again, CONSUMER_CONCURRENCY))[0]!;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONSUMER_CONCURRENCY, early.length) }, whenDue));
  const settledAt = w.clock();
  work.forEach(({ messages: ms }, i) => {
    for (const m of ms) settle(m, visited[i]!, settledAt);
  });
}

/** How often a running invocation looks for units due while it runs. */
export const ADOPT_POLL_MS = 250;

/**
 * Runs `visits` and, while they run, adopts the units that come due meanwhile (a hand-over, a
 * publish, a retry).
 *
 * A hand-over's task waits for a consumer invocation, and a busy invocation can keep one for its
 * whole budget: Miniflare runs one batch at a time, and Queues adds concurrency only as batches
 * end. So an invocation that is still delivering looks, every ADOPT_POLL_MS, for wake members
 * due (one ZRANGE: schedule.ts dueUnits) and visits them itself within its budget, so they wait
 * a fraction of a second, not a budget. Their tasks, when they come, find less or nothing to do.
 * Each is tried once per invocation (by its score), so one that stays due costs one load and one
 * take at most. Adopted visits count against CONSUMER_CONCURRENCY, so their takes stay inside
 * READ_MEMORY.
 */
async function withAdoption<T>(
  ctx: Worker,
  visiting: Set<string>,
  visits: number,
  run: () => Promise<T>,
): Promise<T> {
  let running = visits;
  let finished = () => {};
  const allDone = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const ended = (n: number) => {
    running -= n;
    if (running === 0) finished();
  };
  const first = run().finally(() => ended(visits));
  const tried = new Map<string, number>();
  const adopted: Promise<unknown>[] = [];
  try {
    for (;;) {
      await Promise.race([ctx.sleep(ADOPT_POLL_MS), allDone]);
      const now = ctx.clock();
      if (running === 0) break;
      const room = CONSUMER_CONCURRENCY - running;
      if (room <= 0 || !ctx.db.meter.allows(now, 6)) continue;
      const due = await dueUnits(ctx.db, now, CONSUMER_CONCURRENCY * 2);
      const wanted = new Map<string, { channel: string; name: string }>();
      for (const { kind, unit, at } of due) {
        const key = `${unit.channel}/${unit.subscription}`;
        if (kind !== "wake" || visiting.has(key) || tried.get(key) === at) continue;
        if (wanted.size >= room) break;
        tried.set(key, at);
        wanted.set(key, { channel: unit.channel, name: unit.subscription });
      }
      if (wanted.size === 0) continue;
      const loaded = await load(ctx.db, [...wanted.values()]);
      for (const key of wanted.keys()) visiting.add(key);
      running += loaded.length;
      adopted.push(
        visitAll(ctx, loaded, CONSUMER_CONCURRENCY).finally(() => {
          for (const key of wanted.keys()) visiting.delete(key);
          ended(loaded.length);
        }),
      );
    }
  } catch (error) {
    // Adopting is an optimisation: the units' own tasks (or the cron) still come.
    console.error("the delivery queue's consumer stopped adopting due units:", error);
  }
  await Promise.allSettled(adopted);
  return first;
}

// Backoff of a task whose visit failed: 5 s, 10 s, 20 s... (the queue's attempts count from 1).
const failedDelaySeconds = (attempts: number) => Math.min(300, 5 * 2 ** (attempts - 1));

// How much later than a retry task's own time the schedule may be and still be that retry (the
// same entry's visibility, recomputed from its idle time).
const SAME_RETRY_MS = 1_000;

function settle(message: TaskMessage, visited: Visited, now: number): void {
  const later = visited.kind === "not-due" && visited.at !== null ? visited.at - now : 0;
  const wanted = asTask(message.body)?.at;
  // A retry whose time the schedule has left behind: an entry in flight then was settled, and
  // the visit that moved the schedule asked for a task of its own. Chasing it would keep one
  // task per visit alive for as long as the subscription stays busy.
  const moved =
    wanted !== undefined && visited.kind === "not-due" && visited.at !== null
      ? visited.at > wanted + SAME_RETRY_MS
      : false;
  if (moved) message.ack();
  else if (later > 0 && later <= MAX_DELAY_SECONDS * 1000) {
    message.retry({ delaySeconds: Math.ceil(later / 1000) });
  } else if (visited.kind === "no-budget") {
    message.retry();
  } else if (visited.kind === "visited" && visited.summary.error !== undefined) {
    message.retry({ delaySeconds: failedDelaySeconds(message.attempts) });
  } else {
    message.ack();
  }
}
