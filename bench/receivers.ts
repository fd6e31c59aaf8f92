// The webhook endpoints of the benchmark: one HTTP server on 127.0.0.1, one path per subscriber
// (/<name>), each verifying signatures with standardwebhooks like a real subscriber and counting
// the distinct message ids it accepted. A failure rate makes it answer 500 to that share of
// requests (the retries scenarios); a delay makes it a slow subscriber. Requests are answered in
// parallel, like any HTTP service's: each endpoint notes the most it had in flight at once.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";
import { Webhook } from "standardwebhooks";

export interface EndpointOptions {
  /** Waits this long before answering each request (a slow subscriber). */
  delayMs?: number;
  /** This share of requests is answered 500 (else the stack-wide setFailureRate). */
  failureRate?: number;
  /** Notes every attempt at every message: when it came, and its attempt number. */
  trackAttempts?: boolean;
  /**
   * Counts messages by their `data.n`, from 0 to `indexed` - 1, in a bitset instead of keeping
   * every id (a backlog of millions): one whose n came before is a repeat, in whatever order
   * requests arrive (a subscription's requests go side by side).
   */
  indexed?: number;
}

export interface Attempt {
  attempt: number;
  at: number;
}

interface Endpoint {
  webhook: Webhook;
  options: EndpointOptions;
  ids: Set<string>;
  /** indexed: how many came, which n came (a bit each), and how many came again. */
  count: number;
  seen: Uint8Array;
  repeats: number;
  requests: number;
  /** Requests read and not yet answered (or cut), and the most there were at once. */
  inFlight: number;
  maxInFlight: number;
  /** publish -> receive latencies, for messages whose data carries {sentAt}. */
  latencies: number[];
  attempts: Map<string, Attempt[]>;
}

export interface Receivers {
  url: string;
  add(name: string, secret: string, options?: EndpointOptions): string;
  received(name: string): number;
  /** indexed endpoints: messages that came again. */
  repeats(name: string): number;
  requests(name: string): number;
  /** The most requests the endpoint had in flight at once: read, not yet answered. */
  maxInFlight(name: string): number;
  latencies(name: string): number[];
  attempts(name: string): Map<string, Attempt[]>;
  setFailureRate(rate: number): void;
  close(): Promise<void>;
}

export async function startReceivers(): Promise<Receivers> {
  const endpoints = new Map<string, Endpoint>();
  let failureRate = 0;
  const server = createServer(async (req, res) => {
    const body = await text(req);
    const arrived = Date.now();
    const endpoint = endpoints.get((req.url ?? "/").slice(1));
    if (!endpoint) return void res.writeHead(404).end();
    endpoint.requests++;
    endpoint.inFlight++;
    endpoint.maxInFlight = Math.max(endpoint.maxInFlight, endpoint.inFlight);
    // "close" comes once the answer is sent, or the connection is cut before it.
    res.once("close", () => endpoint.inFlight--);
    let batch: { messages: { id: string; data: unknown; attempt: number }[] };
    try {
      batch = endpoint.webhook.verify(body, req.headers as Record<string, string>) as typeof batch;
    } catch {
      return void res.writeHead(401).end();
    }
    const { delayMs, trackAttempts, indexed } = endpoint.options;
    if (trackAttempts) {
      for (const { id, attempt } of batch.messages) {
        const list = endpoint.attempts.get(id) ?? [];
        list.push({ attempt, at: arrived });
        endpoint.attempts.set(id, list);
      }
    }
    if (delayMs) await new Promise((resolve) => setTimeout(resolve, delayMs));
    const rate = endpoint.options.failureRate ?? failureRate;
    if (rate > 0 && Math.random() < rate) return void res.writeHead(500).end();
    const now = Date.now();
    for (const message of batch.messages) {
      if (indexed) {
        const n = (message.data as { n?: unknown } | null)?.n;
        if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n >= indexed) {
          throw new Error(`indexed receiver: a message without a data.n below ${indexed}`);
        }
        const [byte, bit] = [n >> 3, 1 << (n & 7)];
        if (endpoint.seen[byte]! & bit) endpoint.repeats++;
        else {
          endpoint.seen[byte]! |= bit;
          endpoint.count++;
        }
      } else {
        endpoint.ids.add(message.id);
      }
      const sentAt = (message.data as { sentAt?: number } | null)?.sentAt;
      if (typeof sentAt === "number") endpoint.latencies.push(now - sentAt);
    }
    res.writeHead(204).end();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const get = (name: string) => {
    const endpoint = endpoints.get(name);
    if (!endpoint) throw new Error(`no receiver ${name}`);
    return endpoint;
  };
  return {
    url,
    add(name, secret, options = {}) {
      endpoints.set(name, {
        webhook: new Webhook(secret),
        options,
        ids: new Set(),
        count: 0,
        seen: new Uint8Array(Math.ceil((options.indexed ?? 0) / 8)),
        repeats: 0,
        requests: 0,
        inFlight: 0,
        maxInFlight: 0,
        latencies: [],
        attempts: new Map(),
      });
      return `${url}/${name}`;
    },
    received: (name) => {
      const e = get(name);
      return e.options.indexed ? e.count : e.ids.size;
    },
    repeats: (name) => get(name).repeats,
    requests: (name) => get(name).requests,
    maxInFlight: (name) => get(name).maxInFlight,
    latencies: (name) => get(name).latencies,
    attempts: (name) => get(name).attempts,
    setFailureRate(rate) {
      failureRate = rate;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
