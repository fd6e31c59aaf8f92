// A subscriber's endpoint for tests: a real HTTP server on 127.0.0.1 that records every request
// and answers as the test scripts it (a status, a `{"failed":[...]}` body, a Retry-After, a held
// answer for timeouts, or a dropped connection).
//
// Each request is recorded when its body has arrived, before the reply is computed, and the
// status actually sent is added to the record afterwards: `acceptedIds()` is derived from what
// the deliverer was told, so a reply that was scripted but never sent (dropped, or held past the
// close) accepts nothing.

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { text } from "node:stream/consumers";
import { Webhook } from "standardwebhooks";

export interface WebhookMessage {
  id: string;
  type: string | null;
  data: unknown;
  publishedAt: string;
  attempt: number;
}

export interface WebhookBody {
  channel: string;
  subscription: string;
  messages: WebhookMessage[];
}

export interface ReceivedRequest {
  method: string;
  /** Path and query, e.g. `/hook`. */
  path: string;
  /** Lowercased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body exactly as received. */
  raw: string;
  /** Null if the body is not JSON. */
  body: WebhookBody | null;
  /** `standardwebhooks` verify() passed with the receiver's secret at the time; false with none. */
  verified: boolean;
  /** Date.now() when it arrived. */
  at: number;
  /** 1-based index of this request. */
  n: number;
  /** The status sent; undefined while held, or if the connection was dropped before an answer. */
  status?: number;
  /** The reply body sent: parsed JSON when it is JSON, else the text. */
  replyBody?: unknown;
}

export type Reply =
  | { status: number; body?: string | object; headers?: Record<string, string>; delayMs?: number }
  | "drop"; // destroy the socket without answering: a network error for the sender

export interface TestReceiver {
  /** e.g. http://127.0.0.1:12345/hook */
  url: string;
  requests: ReceivedRequest[];
  /** Every message received, flattened in arrival order (duplicates kept). */
  messages(): WebhookMessage[];
  /** Ids of messages received in requests answered 2xx and not listed in a {"failed"} reply: what the subscriber accepted. */
  acceptedIds(): string[];
  setSecret(secret: string | null): void;
  /** How to answer from now on; default: 204. Called per request, may be async. */
  respond(reply: Reply | ((req: ReceivedRequest) => Reply | Promise<Reply>)): void;
  /** Resolves when predicate(this) is true (polls every 10 ms); rejects with what was received so far after timeoutMs (default 10 s). */
  waitFor(predicate: (r: TestReceiver) => boolean, timeoutMs?: number): Promise<void>;
  /** Closes the server and every open socket, those held by a delayMs reply included. */
  close(): Promise<void>;
}

const POLL_MS = 10;
const DEFAULT_WAIT_MS = 10_000;

export async function startReceiver(
  options: { secret?: string | null; path?: string } = {},
): Promise<TestReceiver> {
  const hookPath = options.path ?? "/hook";
  let secret = options.secret ?? null;
  let script: (req: ReceivedRequest) => Reply | Promise<Reply> = () => ({ status: 204 });
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  /** Releases for replies held by delayMs, so close() can end them at once. */
  const held = new Set<() => void>();

  function hold(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const release = () => {
        clearTimeout(timer);
        held.delete(release);
        resolve();
      };
      const timer = setTimeout(release, ms);
      held.add(release);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const raw = await text(req);
    const headers = flatHeaders(req);
    const record: ReceivedRequest = {
      method: req.method ?? "",
      path: req.url ?? "",
      headers,
      raw,
      body: asBody(parseJson(raw)),
      verified: verify(secret, raw, headers),
      at,
      n: requests.length + 1,
    };
    requests.push(record);
    const reply: Reply = record.path === hookPath ? await script(record) : { status: 404 };
    if (reply === "drop") return void req.socket.destroy();
    if (reply.delayMs) await hold(reply.delayMs);
    // The sender gave up (its timeout) while the answer was held, or close() cut it: nothing was
    // told, so nothing is recorded as answered.
    if (res.destroyed || !res.socket || res.socket.destroyed) return;
    const out = typeof reply.body === "object" ? JSON.stringify(reply.body) : (reply.body ?? "");
    const contentType = typeof reply.body === "object" ? "application/json" : "text/plain";
    res.writeHead(reply.status, { ...(out && { "content-type": contentType }), ...reply.headers });
    res.end(out);
    record.status = reply.status;
    record.replyBody = parseJson(out) ?? (out === "" ? undefined : out);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // A throwing script is a test bug: answer 500 and say so where the test output shows it.
      console.error("test receiver: the scripted reply threw", error);
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as AddressInfo;

  const receiver: TestReceiver = {
    url: `http://127.0.0.1:${port}${hookPath}`,
    requests,
    messages: () => requests.flatMap(messagesOf),
    acceptedIds: () => requests.flatMap(acceptedBy),
    setSecret: (next) => {
      secret = next;
    },
    respond: (reply) => {
      script = typeof reply === "function" ? reply : () => reply;
    },
    waitFor: async (predicate, timeoutMs = DEFAULT_WAIT_MS) => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(receiver)) {
        if (Date.now() >= deadline) {
          throw new Error(`waitFor: not true after ${timeoutMs} ms; ${describeRequests(requests)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Sockets first: a released reply then finds its socket gone and sends nothing.
      for (const socket of sockets) socket.destroy();
      for (const release of held) release();
      await closed;
    },
  };
  return receiver;
}

/** The ids a request's answer acked: all of them on a 2xx, less those in a {"failed"} body. */
function acceptedBy(record: ReceivedRequest): string[] {
  if (record.status === undefined || record.status < 200 || record.status > 299) return [];
  const reply = record.replyBody as { failed?: unknown } | undefined;
  const failed = new Set(Array.isArray(reply?.failed) ? reply.failed : []);
  return messagesOf(record)
    .map((m) => m.id)
    .filter((id) => !failed.has(id));
}

function verify(secret: string | null, raw: string, headers: Record<string, string>): boolean {
  if (secret === null) return false;
  try {
    new Webhook(secret).verify(raw, headers);
    return true;
  } catch {
    return false;
  }
}

/** One line per request, for a timeout message that shows what did arrive. */
function describeRequests(requests: ReceivedRequest[]): string {
  if (requests.length === 0) return "no requests received";
  const lines = requests.map((r) => {
    const ids =
      messagesOf(r)
        .map((m) => `${m.id}@${m.attempt}`)
        .join(",") || r.raw.slice(0, 80);
    const answer = r.status === undefined ? "no answer" : String(r.status);
    return `  #${r.n} ${r.method} ${r.path} -> ${answer}${r.verified ? "" : " (unverified)"}: ${ids}`;
  });
  return `received ${requests.length} request(s):\n${lines.join("\n")}`;
}

function flatHeaders(req: IncomingMessage): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
  }
  return headers;
}

/** The parsed body when it is a JSON object, as sent (a malformed one is for the test to see). */
function asBody(parsed: unknown): WebhookBody | null {
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return null;
  return parsed as WebhookBody;
}

/** The request's messages, or none when its body has no `messages` array. */
function messagesOf(record: ReceivedRequest): WebhookMessage[] {
  const messages = record.body?.messages;
  return Array.isArray(messages) ? messages : [];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
