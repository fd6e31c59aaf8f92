// What one Worker invocation may spend, measured where it is spent.
//
// Cloudflare counts subrequests per invocation (every fetch: each Upstash REST request, each
// webhook POST; and calls to bindings such as a queue's send): 10,000 on the paid plan, 50 on the
// free one, and an invocation past its limit is cut off mid-work. It also keeps at most six
// connections open at once per invocation. So every Redis request (shared/redis.ts wraps
// @upstash/redis's requester with `subrequest`) and every webhook POST (worker/deliver.ts, request
// and answer's body both inside `subrequest`) of an invocation
// goes through its one Meter: the meter counts them, holds at most CONNECTIONS open at once, and
// answers how many are left. Budgets are read off it (`allows`); nothing counts by hand.
//
// A Meter is made per invocation (the fetch handler's middleware, the cron's and the queue's
// handlers) and handed down with the Redis client it meters. It never reads the clock: the
// deadline is given, and `now` is passed to `allows`.

/** Cloudflare's limit of simultaneously open connections per invocation. */
export const CONNECTIONS = 6;
/**
 * Webhook POSTs in flight at once: every connection. A Redis round trip that finds them all
 * taken gets the first one a POST gives back (a POST waits for a slot of its own before it asks
 * for a connection), and the deliverers' rounds waiting meanwhile go in one request
 * (shared/redis.ts: sendBatch). Keeping one connection for Redis instead cost a sixth of the
 * POSTs: measured, fast subscribers' p99 latency went from 170-180 ms to 270-460 ms.
 */
export const POST_SLOTS = CONNECTIONS;

/** Thrown when a subrequest would pass the limit: the product plans never to reach it. */
export class SubrequestLimit extends Error {
  override name = "SubrequestLimit";
}

/** A counting semaphore: at most `size` holders at once, the rest wait in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(size: number) {
    this.free = size;
  }
  /** Takes up to `n` slots without waiting; how many it took. */
  tryTake(n: number): number {
    const taken = Math.max(0, Math.min(n, this.free));
    this.free -= taken;
    return taken;
  }
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  give(n = 1): void {
    for (let i = 0; i < n; i++) {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
  get available(): number {
    return this.free;
  }
}

export class Meter {
  /** Subrequests this invocation may make in all. */
  readonly limit: number;
  /** No new work starts after this time (ms); the work under way ends after it. */
  readonly deadline: number;
  private made = 0;
  private held = 0;
  private open = 0;
  private mostOpen = 0;
  private readonly returns: (() => void)[] = [];
  private readonly connections = new Slots(CONNECTIONS);
  /** Slots for webhook POSTs (a subset of the connections: see POST_SLOTS). */
  readonly posts = new Slots(POST_SLOTS);

  constructor(options: { limit: number; deadline: number }) {
    this.limit = options.limit;
    this.deadline = options.deadline;
  }

  /** Subrequests made so far. */
  get used(): number {
    return this.made;
  }

  /** The most connections that were open at once. */
  get peakConnections(): number {
    return this.mostOpen;
  }

  /** Subrequests left, after what running work keeps back for its end (`hold`). */
  get left(): number {
    return this.limit - this.made - this.held;
  }

  /** Subrequests running work keeps back for its end: what will come back when it ends. */
  get kept(): number {
    return this.held;
  }

  /** Resolves when running work next gives back what it kept (`unhold`). */
  returned(): Promise<void> {
    return new Promise((resolve) => this.returns.push(resolve));
  }

  /** May work needing `subrequests` more start at `now` (before the deadline, within the limit)? */
  allows(now: number, subrequests: number): boolean {
    return now < this.deadline && this.left >= subrequests;
  }

  /**
   * Keeps `subrequests` back for work that has started and must be able to end (a deliverer's
   * last write); `unhold` gives them back once that end is made (its requests counted as made).
   */
  hold(subrequests: number): void {
    this.held += subrequests;
  }
  unhold(subrequests: number): void {
    this.held = Math.max(0, this.held - subrequests);
    if (subrequests <= 0) return;
    for (const resolve of this.returns.splice(0)) resolve();
  }

  /**
   * One subrequest that opens a connection: counted, and run once fewer than CONNECTIONS are
   * open. Throws SubrequestLimit (before sending anything) past the limit.
   */
  async subrequest<T>(send: () => Promise<T>): Promise<T> {
    this.count();
    await this.connections.take();
    this.open++;
    this.mostOpen = Math.max(this.mostOpen, this.open);
    try {
      return await send();
    } finally {
      this.open--;
      this.connections.give();
    }
  }

  /**
   * A subrequest that opens no connection of this invocation's (a queue binding's send): counted
   * only. Throws SubrequestLimit past the limit.
   */
  count(): void {
    if (this.made >= this.limit) {
      throw new SubrequestLimit(`this invocation has made its ${this.limit} subrequests`);
    }
    this.made++;
  }
}

/** A meter with no practical limit, for tools outside a Worker invocation (the tests' helpers). */
export const unmetered = () => new Meter({ limit: Number.MAX_SAFE_INTEGER, deadline: Infinity });
