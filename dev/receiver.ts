// `npm run receiver`: a webhook endpoint to start from, and to watch streamhook deliver.
//
//   npm run receiver -- --secret whsec_... [--port 9000] [--host 127.0.0.1]
//                       [--out messages.jsonl] [--fail-rate 0.3]
//
// Each POST is checked the way a subscriber should check it: the signature over the raw body,
// with the `standardwebhooks` package, before anything in the body is trusted. A verified batch
// is printed one message a line, appended to --out as JSON lines, and acked with 204 (any 2xx
// acks the whole batch). --fail-rate answers 500 to that share of batches, acking nothing, so
// retries and `attempt` can be watched.

import { appendFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { text } from "node:stream/consumers";
import { Webhook } from "standardwebhooks";
import { commandLine, integerOption, parseOptions, UsageError } from "./cli.ts";

export interface ReceiverOptions {
  /** The subscription's secret, `whsec_<base64>`. */
  secret: string;
  /** Default 9000; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1: only this machine can post to it. */
  host?: string;
  /** A file to append each received message to, as one JSON line. */
  out?: string;
  /** Share of verified batches answered 500, 0..1; default 0. */
  failRate?: number;
  /** Where lines are printed; default console.log. */
  log?: (line: string) => void;
}

export interface Receiver {
  url: string;
  close(): Promise<void>;
}

interface Batch {
  channel: string;
  subscription: string;
  messages: { id: string; type: string | null; data: unknown; attempt: number }[];
}

const USAGE = `usage: npm run receiver -- --secret whsec_<base64> [options]

A webhook endpoint: checks each request's Standard Webhooks signature, prints each message of a
verified batch on one line and acks it with 204 (a bad signature gets 401). Ctrl-C stops it.

  --secret whsec_<base64>  the subscription's signing secret (required)
  --port <n>               port to listen on, 0 for any free one (default 9000)
  --host <address>         address to listen on (default 127.0.0.1: this machine only)
  --out <file>             append each message to <file> as one JSON line, before the 204
  --fail-rate <0..1>       answer 500 to this share of verified batches (default 0), to watch
                           retries
  -h, --help               print this and exit`;

/** Starts listening; resolves once the port is bound. Throws on a secret that is not base64. */
export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
  const webhook = new Webhook(options.secret);
  const log = options.log ?? console.log;
  const host = options.host ?? "127.0.0.1";

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "POST") return void res.writeHead(405, { allow: "POST" }).end();
    const raw = await text(req);
    let batch: Batch;
    try {
      batch = webhook.verify(raw, req.headers as Record<string, string>) as Batch;
    } catch (error) {
      log(`401 rejected ${req.headers["webhook-id"] ?? "(no webhook-id)"}: ${errorText(error)}`);
      return void res.writeHead(401).end();
    }
    const messages = Array.isArray(batch?.messages) ? batch.messages : [];
    if (Math.random() < (options.failRate ?? 0)) {
      log(`500 failing batch ${req.headers["webhook-id"]} on purpose (--fail-rate): will retry`);
      return void res.writeHead(500).end();
    }
    for (const m of messages) {
      log(`${m.id} ${m.type ?? "-"} ${JSON.stringify(m.data)} attempt=${m.attempt}`);
    }
    if (options.out && messages.length > 0) {
      const receivedAt = new Date().toISOString();
      const { channel, subscription } = batch;
      const lines = messages.map((m) =>
        JSON.stringify({ channel, subscription, ...m, receivedAt }),
      );
      // Written before the 204: an acked message is on disk, or the batch is retried.
      await appendFile(options.out, `${lines.join("\n")}\n`);
    }
    res.writeHead(204).end();
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`500 ${errorText(error)}`);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 9000, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive sockets would hold close() open
      }),
  };
}

/** Reads the CLI's arguments; throws a UsageError on anything invalid. */
export function parseCli(argv: string[]): ReceiverOptions {
  const values = parseOptions(argv, {
    port: { type: "string", default: "9000" },
    secret: { type: "string" },
    out: { type: "string" },
    "fail-rate": { type: "string", default: "0" },
    host: { type: "string", default: "127.0.0.1" },
  });
  if (!values.secret) throw new UsageError("--secret is required");
  const port = integerOption("port", values.port, 0, 65_535);
  const failRate = Number(values["fail-rate"]);
  if (values["fail-rate"].trim() === "" || !(failRate >= 0 && failRate <= 1)) {
    throw new UsageError(`--fail-rate must be between 0 and 1, got "${values["fail-rate"]}"`);
  }
  try {
    new Webhook(values.secret);
  } catch (error) {
    throw new UsageError(`--secret must be whsec_<base64>: ${errorText(error)}`);
  }
  return { secret: values.secret, port, host: values.host, out: values.out, failRate };
}
const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error));

if (import.meta.main) {
  const options = commandLine("receiver", USAGE, parseCli);
  const receiver = await startReceiver(options).catch((error: unknown) => {
    console.error(`receiver: ${errorText(error)}`); // e.g. EADDRINUSE: the port is taken
    process.exit(1);
  });
  console.log(`receiver listening on ${receiver.url} (POST any path)`);
  const stop = (signal: NodeJS.Signals) => {
    console.log(`receiver: ${signal}, stopping`);
    receiver.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
