// The delivery queue's operations, as the local queue broker (Miniflare's, in the benchmark's
// workerd) reports them: one line per consumer batch, "QUEUE <name> <acked>/<sent> (<ms>)".
// Cloudflare bills a queue per operation (per 64 KB): a write, a read and a delete for each
// message, and one more read for each time it is retried. So, for messages of under 64 KB:
//
//   reads   = every message of every batch (a retried message is in a later batch again)
//   deletes = every message acked
//   writes  = every message sent to the queue: each is acked once, or dropped after its retries
//             (none here), so as many as deletes
//
// The broker logs at wrangler's "info" level, which the benchmark's `wrangler dev` runs at.

export interface QueueOps {
  batches: number;
  reads: number;
  acked: number;
  /** writes + reads + deletes. */
  operations: number;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes in the broker's line
const ANSI = /\u001b\[[0-9;]*m/g;
const LINE = /QUEUE (\S+) (\d+)\/(\d+)/;

/** Counts the broker's lines among a `wrangler dev --log-level info` output's. */
export function queueOpsCounter(): { line(text: string): void; read(): QueueOps } {
  const totals = { batches: 0, reads: 0, acked: 0 };
  return {
    line(text) {
      const match = LINE.exec(text.replace(ANSI, ""));
      if (!match) return;
      totals.batches++;
      totals.acked += Number(match[2]);
      totals.reads += Number(match[3]);
    },
    read: () => ({ ...totals, operations: totals.reads + 2 * totals.acked }),
  };
}

/** What happened between two readings. */
export function opsBetween(before: QueueOps, after: QueueOps): QueueOps {
  return {
    batches: after.batches - before.batches,
    reads: after.reads - before.reads,
    acked: after.acked - before.acked,
    operations: after.operations - before.operations,
  };
}
