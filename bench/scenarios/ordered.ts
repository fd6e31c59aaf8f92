// Ordered delivery beside unordered, on one endpoint: the same backlog drained by the passes the
// bench runs (the manual Worker: no kick, no queue), by an unordered subscription, an ordered one
// whose messages share one ordering key (a FIFO: one message a request, one request at a time),
// and an ordered one over 100 keys (up to 100 at once: one message of each key a request, up to
// maxConcurrency requests). Each cell on a channel of its own, one after the other, the endpoint
// answering after `delayMs`. Reports messages/s from the first pass until all are received, and
// Redis commands per message (lua/take.ts: what the lanes add).

import { counted, round } from "../measure.ts";
import type { BenchStack } from "../stack.ts";
import { SECRET } from "./sustained.ts";

export interface OrderedCell {
  /** "unordered", "1 key", "100 keys". */
  what: string;
  messages: number;
  perSecond: number;
  passes: number;
  commandsPerMessage: number;
}

export interface OrderedResult {
  delayMs: number;
  batchSize: number;
  cells: OrderedCell[];
}

const CELLS = [
  { what: "unordered", ordered: false, keys: 0 },
  { what: "1 key", ordered: true, keys: 1 },
  { what: "100 keys", ordered: true, keys: 100 },
];

export async function orderedScenario(
  stack: BenchStack,
  options: { messages: number; fifoMessages: number; delayMs: number; timeoutMs: number },
): Promise<OrderedResult> {
  const batchSize = 10;
  const cells: OrderedCell[] = [];
  for (const cell of CELLS) {
    const channel = `ordered-${cell.what.replace(/ /g, "-")}`;
    const receiver = `${channel}-s`;
    // One key is one request per message: fewer of them, or it would take minutes.
    const total = cell.keys === 1 ? options.fifoMessages : options.messages;
    const url = stack.receivers.add(receiver, SECRET, { delayMs: options.delayMs });
    await stack.manual.json("POST", `/v1/channels/${channel}/subscriptions`, {
      name: "s",
      url,
      batchSize,
      secret: SECRET,
      ...(cell.ordered ? { ordered: true } : {}),
    });
    for (let i = 0; i < total; i += 1000) {
      const messages = Array.from({ length: Math.min(1000, total - i) }, (_, j) => ({
        data: { n: i + j },
        ...(cell.keys > 0 ? { orderingKey: `key-${(i + j) % cell.keys}` } : {}),
      }));
      await stack.manual.json("POST", `/v1/channels/${channel}/messages`, { messages });
    }
    let passes = 0;
    const started = performance.now();
    const deadline = Date.now() + options.timeoutMs;
    const { commands } = await counted(stack.redis, async () => {
      while (stack.receivers.received(receiver) < total && Date.now() < deadline) {
        await stack.manual.json("POST", "/v1/deliver");
        passes++;
      }
    });
    const seconds = (performance.now() - started) / 1000;
    const received = stack.receivers.received(receiver);
    if (received < total)
      throw new Error(`ordered: ${cell.what}: ${received} of ${total} received`);
    cells.push({
      what: cell.what,
      messages: total,
      perSecond: round(received / seconds, 0),
      passes,
      commandsPerMessage: round(commands / total, 4),
    });
    await stack.manual.call("DELETE", `/v1/channels/${channel}?force=true`);
  }
  return { delayMs: options.delayMs, batchSize, cells };
}
