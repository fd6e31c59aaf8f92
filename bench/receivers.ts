// The webhook endpoints of the benchmark: one HTTP server on 127.0.0.1, one path per subscriber
// (/<name>), each verifying signatures with standardwebhooks like a real subscriber and counting
// the distinct message ids it accepted. A failure rate makes it answer 500 to that share of
// requests (the retries scenario).

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";
import { Webhook } from "standardwebhooks";

interface Endpoint {
  webhook: Webhook;
  ids: Set<string>;
  requests: number;
  /** publish -> receive latencies, for messages whose data carries {sentAt}. */
  latencies: number[];
}

export interface Receivers {
  url: string;
  add(name: string, secret: string): string;
  received(name: string): number;
  requests(name: string): number;
  latencies(name: string): number[];
  setFailureRate(rate: number): void;
  close(): Promise<void>;
}
export async function startReceivers(): Promise<Receivers> {
  const endpoints = new Map<string, Endpoint>();
  let failureRate = 0;
  const server = createServer(async (req, res) => {
    const body = await text(req);
    const endpoint = endpoints.get((req.url ?? "/").slice(1));
    if (!endpoint) return void res.writeHead(404).end();
    endpoint.requests++;
    let batch: { messages: { id: string; data: unknown }[] };
    try {
      batch = endpoint.webhook.verify(body, req.headers as Record<string, string>) as typeof batch;
    } catch {
      return void res.writeHead(401).end();
    }
    if (failureRate > 0 && Math.random() < failureRate) return void res.writeHead(500).end();
    const now = Date.now();
    for (const message of batch.messages) {
      endpoint.ids.add(message.id);
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
    add(name, secret) {
      endpoints.set(name, {
        webhook: new Webhook(secret),
        ids: new Set(),
        requests: 0,
        latencies: [],
      });
      return `${url}/${name}`;
    },
    received: (name) => get(name).ids.size,
    requests: (name) => get(name).requests,
    latencies: (name) => get(name).latencies,
    setFailureRate(rate) {
      failureRate = rate;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
