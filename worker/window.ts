// What a deliverer run tells the subscription's window of requests in flight (lua/take.ts step
// 5), pure. The window is shared in Redis; a run grows its own copy with its successes and writes
// them only when that copy has moved far enough to matter to others: once it has doubled since
// it was last read (slow start), once its whole part has grown (after a cut: additive), when it
// reaches maxConcurrency, and at the run's end. Congestion is told at once (the cut). So a ramp
// costs a write per doubling, not per take; and a run alone on the subscription (its last take
// found no other reader holding entries, and it asked nobody to join) has nobody to tell: it
// writes only on reaching maxConcurrency and at its end. A reader that comes meanwhile reads a
// smaller window than the run's copy, and so takes less; a run killed first loses its growth:
// either way the window errs small. Table tests: test/worker/window.test.ts.

import type { Signals, Window } from "../shared/engine/take.ts";

const NO_SIGNALS: Signals = { succeeded: 0, congestedAt: 0 };

/** The window after `succeeded` more successes, as lua/take.ts grows it, within `max`. */
export function grown(window: Window, succeeded: number, max: number): Window {
  const size = window.cutAt === 0 ? window.size + succeeded : window.size + succeeded / window.size;
  return { ...window, size: Math.min(max, size) };
}

/** What a take tells the window: the signals it carries, those kept for later, and the window
 * it takes with (`known`: as last read, or grown by the kept successes). */
export interface Told {
  carried: Signals;
  kept: Signals;
  known: Window | null;
  /** The take reads or writes the stored window: its reply is the stored one. */
  stored: boolean;
}

/**
 * What a take with `signals` owed tells the window `known` (as the run last read it; null: not
 * yet), capped at `max`; `final`: the run's last round, which writes what it kept; `alone`: no
 * other reader to tell (see the header).
 */
export function tell(
  known: Window | null,
  signals: Signals,
  max: number,
  final: boolean,
  alone = false,
): Told {
  const all: Told = { carried: signals, kept: NO_SIGNALS, known, stored: true };
  if (known === null || final || signals.congestedAt > 0 || signals.succeeded === 0) return all;
  const next = grown(known, signals.succeeded, max);
  const far =
    next.size >= max ||
    (!alone &&
      (known.cutAt === 0
        ? next.size >= 2 * known.size
        : Math.floor(next.size) > Math.floor(known.size)));
  if (far) return all;
  return { carried: NO_SIGNALS, kept: signals, known: next, stored: false };
}
