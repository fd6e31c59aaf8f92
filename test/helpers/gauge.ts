// Requests open at once, counted where they arrive: the bridge and the receivers of a test share
// one gauge, so a test sees how many connections a Worker invocation holds open at once (its
// Redis requests and its webhook POSTs together).

export interface Gauge {
  enter(): void;
  leave(): void;
  /** Requests open right now. */
  readonly open: number;
  /** The most that were open at once. */
  readonly most: number;
  /** Starts counting the most afresh (from what is open now). */
  reset(): void;
}

export function gauge(): Gauge {
  let open = 0;
  let most = 0;
  return {
    enter() {
      open++;
      most = Math.max(most, open);
    },
    leave() {
      open--;
    },
    get open() {
      return open;
    },
    get most() {
      return most;
    },
    reset() {
      most = open;
    },
  };
}
