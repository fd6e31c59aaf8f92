// How a deliverer run ends, pure: what each way of ending does to its unit's wake member (its
// last take sets the retry member from the group itself: lua/take.ts), and when the unit wants
// its next visit (a queue task, visit.ts). Table tests: test/worker/ending.test.ts.

import type { Stop } from "./settle.ts";

/**
 * How a run ended: idle (nothing more to read), busy (other deliverers hold the cap), full (the
 * group's pending limit), budget (the invocation's), backoff (its endpoint failed), gone (410:
 * paused), error (a bug or an outage: logged; it ends as well as it can and is due again), lost
 * (the group is gone: the caller finds out why).
 */
export type End = "idle" | "busy" | "full" | "budget" | "backoff" | "gone" | "error" | "lost";

/** A change to the unit's wake member in {p}:due. */
export type WakeChange =
  | { how: "gt" | "set" | "xx"; at: number }
  /** Remove the wake and the retry member: nothing scheduled. */
  | { how: "unschedule" };

/**
 * The wake member after each way of ending, at `now`:
 *   backoff  nothing new read before the backoff ends (ZADD GT: only later)
 *   full     nothing new read for one base delay: retries must make room first
 *   budget   still due, at the back of the schedule (ZADD XX: only while it is there): its next
 *   error    visit carries on (with a queue, the task it asks for; a running invocation adopts it)
 *   gone     nothing scheduled: the subscription is paused until resumed
 * Otherwise as the last take left it (idle: removed if nothing was unread; busy: still due).
 */
export function wakeAfter(
  end: End,
  stop: Stop | null,
  now: number,
  retryBaseMs: number,
): WakeChange | null {
  switch (end) {
    case "backoff":
      return { how: "gt", at: stop?.kind === "backoff" ? stop.at : now };
    case "full":
      return { how: "set", at: now + retryBaseMs };
    case "budget":
    case "error":
      return { how: "xx", at: now };
    case "gone":
      return { how: "unschedule" };
    default:
      return null;
  }
}

/**
 * When the unit wants its next visit: at once to carry on (budget), one base delay after an
 * error or a full pending list, when a backoff ends, or at `retryAt`: when the first pending
 * entry becomes visible (its last take's end; or the first this run made visible again, its
 * nacks and give-backs, when it ended otherwise); null for nothing (or a pause).
 */
export function nextVisit(
  end: End,
  stop: Stop | null,
  now: number,
  retryAt: number | null,
  retryBaseMs: number,
): number | null {
  if (end === "gone" || end === "lost") return null;
  const wants = [
    end === "budget" ? now : null,
    end === "error" || end === "full" ? now + retryBaseMs : null,
    stop?.kind === "backoff" ? stop.at : null,
    retryAt,
  ].filter((t): t is number => t !== null);
  return wants.length === 0 ? null : Math.min(...wants);
}
