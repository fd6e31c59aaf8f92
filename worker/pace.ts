// Pacing: a subscription with maxRequestsPerSecond has its webhook POSTs started at least
// 1000/rps ms apart (start to start), so no more than rps of them start in any second.
//
// Only one deliverer holds a subscription at a time (its lease), so the deliverer that holds it
// is the only one to pace. What carries across visits is each subscription's last start, kept
// in the isolate's memory (one Pacer per isolate, made in entry.ts): a visit in the same isolate
// waits for the previous visit's last POST too; a visit in another isolate knows nothing of it
// and may send its first POST at once, one interval early at most. That costs no Redis command:
// pacing is a pure wait, and the budget counts the wait (send.ts: waitForSlot).

/** When a POST may start: `now`, or the last start plus the interval if that is later. */
export function nextStartAt(last: number | null, rps: number | null, now: number): number {
  if (rps === null || last === null) return now;
  return Math.max(now, last + 1000 / rps);
}

// Past this many remembered subscriptions, starts older than a second (the longest interval, at
// 1 request per second) are forgotten: they hold back nothing.
const PRUNE_AT = 1_000;

/** The last POST start of each paced subscription (by channel and group) seen in this isolate. */
export class Pacer {
  private readonly lastStart = new Map<string, number>();

  /** When the next POST to the subscription may start (`now` for one without a limit). */
  nextStart(key: string, rps: number | null, now: number): number {
    return nextStartAt(this.lastStart.get(key) ?? null, rps, now);
  }

  /** A POST to the subscription starts `at`. */
  started(key: string, rps: number | null, at: number): void {
    if (rps === null) {
      this.lastStart.delete(key);
      return;
    }
    this.lastStart.set(key, at);
    if (this.lastStart.size <= PRUNE_AT) return;
    for (const [k, t] of this.lastStart) if (t < at - 1000) this.lastStart.delete(k);
  }
}

/** The pacer's key: the group names the subscription's identity, so a new one starts afresh. */
export const paceKey = (sub: { channel: string; group: string }) => `${sub.channel}/${sub.group}`;
