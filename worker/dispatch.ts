// Handing delivery work to Cloudflare Queues, when the Worker has one bound (DELIVERY_QUEUE in
// wrangler.toml). A task names a subscription to visit; the queue's consumer (consumer.ts) visits
// it in an invocation of its own, with its own budget. Without a queue, `noQueue` sends nothing
// and everything waits for the next kick or cron pass, as before.
//
//   handover   a visit ran out of budget with work left: the next one starts at once
//   retry      a unit backed off or kept messages for a retry: visited when that is due (delayed)
//   fanout     more subscriptions are due (a publish woke them, a cron pass found them) than one
//              invocation should visit: each gets a task, and queue concurrency decides how many
//              are delivered at once
//
// Tasks are at least once and may come twice or late: a visit checks what is due first, and what
// it takes no other deliverer holds, so a stale task costs a few Redis commands, never a second
// POST.

import type { QueueBinding } from "../shared/config.ts";
import type { TimerKind } from "../shared/keys.ts";
import type { Meter } from "../shared/meter.ts";
import { type TimerTask, timerTask } from "./timer-task.ts";

/** A queue message: which subscription to visit, and why. */
export interface DeliveryTask {
  v: 1;
  channel: string;
  subscription: string;
  why: "handover" | "retry" | "fanout";
  /**
   * A retry's time (ms): the schedule's time the visit that asked for it saw. A task that finds
   * the schedule moved later since is dropped: whoever moved it asked for its own.
   */
  at?: number;
}

export interface Planned {
  /** A delivery task, or a timer's (timers.ts). */
  task: DeliveryTask | TimerTask;
  /** Not before this time (ms); at once when absent or past. */
  at?: number;
}

export interface Dispatch {
  /** A queue is bound: work that cannot finish here is handed over instead of waiting. */
  readonly queued: boolean;
  /** Sends the tasks; false when there is no queue, or it refused them. */
  send(tasks: Planned[], now: number): Promise<boolean>;
}

// Queues' limits: at most 100 messages per sendBatch, and a delay of at most 12 hours (a retry
// due later than that is left to the cron, which finds it in the schedule).
const BATCH = 100;
export const MAX_DELAY_SECONDS = 12 * 3600;

export const noQueue: Dispatch = { queued: false, send: async () => false };

/** Sends tasks to `queue`, each sendBatch one subrequest of the invocation's `meter`. */
export function queueDispatch(queue: QueueBinding | undefined, meter: Meter): Dispatch {
  if (!queue) return noQueue;
  return {
    queued: true,
    async send(tasks, now) {
      const messages = tasks.flatMap(({ task, at }) => {
        // Rounded down: the task comes up to a second early and its consumer waits the rest
        // (consumer.ts: EARLY_WAIT_MS); rounded up, every retry would be up to a second late.
        const delaySeconds = at === undefined ? 0 : Math.max(0, Math.floor((at - now) / 1000));
        if (delaySeconds > MAX_DELAY_SECONDS) return [];
        return [delaySeconds > 0 ? { body: task, delaySeconds } : { body: task }];
      });
      try {
        for (let i = 0; i < messages.length; i += BATCH) {
          meter.count();
          await queue.sendBatch(messages.slice(i, i + BATCH));
        }
        return true;
      } catch (error) {
        console.error("the delivery queue refused tasks:", error);
        return false;
      }
    },
  };
}

/** A task for a subscription; a retry's with its time. */
export const taskFor = (
  sub: { channel: string; name: string },
  why: DeliveryTask["why"],
  at?: number,
): DeliveryTask => ({
  v: 1,
  channel: sub.channel,
  subscription: sub.name,
  why,
  ...(at === undefined ? {} : { at }),
});

/** The task's body, checked: queue messages come from outside the type system. */
export function asTask(body: unknown): DeliveryTask | null {
  if (typeof body !== "object" || body === null) return null;
  const t = body as Record<string, unknown>;
  const whys = ["handover", "retry", "fanout"];
  if (t.v !== 1 || typeof t.channel !== "string" || typeof t.subscription !== "string") return null;
  if (t.at !== undefined && !Number.isFinite(t.at)) return null;
  return whys.includes(String(t.why)) ? (t as unknown as DeliveryTask) : null;
}

/**
 * A timer task (timer-task.ts) to send for `at`: sent at most Queues' longest delay ahead, it then
 * comes back for the rest (consumer.ts), so a timer days away still runs at its second.
 */
export const plannedTimer = (kind: TimerKind, name: string, at: number, now: number): Planned => ({
  task: timerTask(kind, name, at),
  at: Math.min(at, now + (MAX_DELAY_SECONDS - 1) * 1000),
});
