// A subscriber's endpoint for tests: a real HTTP server on 127.0.0.1 that records every request
// and answers as the test scripts it (a status, a `{"failed":[...]}` body, a Retry-After, a held
// answer for timeouts, or a dropped connection).
//
// Answered is not delivered. Each request is recorded when its body has arrived, before the reply
// is computed; the answer (`status`, `replyBody`) is added when it is due, and `senderGone` says
// whether the sender had hung up (FIN or reset) by then, so it never read that answer:
//   acceptedIds()  2xx, not listed in {"failed"}, and the sender still connected when the answer
//                  went out: what the sender can have been told was accepted.
//   answeredIds()  the same without the last condition: what the receiver said yes to, heard or not.
// A dropped reply, or one still held when close() cuts it, is neither: it has no status.
//
// What the receiver cannot see: a sender that dies after the answer is written (the kernel has
// taken it), and a Worker killed under wrangler's test harness. The harness makes the Worker's
// outbound fetches from the test process (its outboundService calls globalThis.fetch), and nothing
// aborts them when workerd dies: the connection here stays open and the held answer is read, into
// the void. After stack.restartWorker() the receiver hears of the death only if the stack aborts
// the old Worker's outbound fetches; otherwise assert on Redis (XPENDING), not on acceptedIds().

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
  /** A delayed message's id, as its publish answered it. */
  delayedId?: string;
  /** The ordering key it was published with, when it had one. */
  orderingKey?: string;
  /** The publish's W3C traceparent (null: stored before tracing). */
  traceparent: string | null;
  tracestate?: string;
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
  /** The status answered once due; undefined while held, on "drop", or if close() cut the hold. */
  status?: number;
  /** Date.now() when it was answered, dropped or cut; undefined while it is in flight. */
  endedAt?: number;
  /** The reply body answered: parsed JSON when it is JSON, else the text. */
  replyBody?: unknown;
  /**
   * The sender hung up (FIN or reset) before the answer went out, so it never read it (the answer
   * is recorded but not sent). Becomes true while the answer is held, as soon as the sender goes.
   */
  senderGone: boolean;
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
  /** Ids answered 2xx, not listed in a {"failed"} reply, to a sender still there to read it. */
  acceptedIds(): string[];
  /** Ids answered 2xx and not listed in a {"failed"} reply, whether or not the sender read it. */
  answeredIds(): string[];
  setSecret(secret: string | null): void;
  /** How to answer from now on; default: 204. Called per request, may be async. */
  respond(reply: Reply | ((req: ReceivedRequest) => Reply | Promise<Reply>)): void;
  /** The most requests it had in flight at once (from arrival until answered or cut). */
  maxInFlight(): number;
  /** Resolves when predicate(this) is true (polls every 10 ms); rejects with what was received so far after timeoutMs (default 10 s). */
  waitFor(predicate: (r: TestReceiver) => boolean, timeoutMs?: number): Promise<void>;
  /** Closes the server and every open socket, those held by a delayMs reply included. */
  close(): Promise<void>;
}

const POLL_MS = 10;
const DEFAULT_WAIT_MS = 10_000;

/** Counts requests in flight across servers (receivers and the bridge: test/helpers/gauge.ts). */
export interface Gauge {
  enter(): void;
  leave(): void;
}

export async function startReceiver(
  options: { secret?: string | null; path?: string; gauge?: Gauge } = {},
): Promise<TestReceiver> {
  const hookPath = options.path ?? "/hook";
  let secret = options.secret ?? null;
  let script: (req: ReceivedRequest) => Reply | Promise<Reply> = () => ({ status: 204 });
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<Socket>();
  /** Releases for replies held by delayMs, so close() can end them at once. */
  const held = new Set<() => void>();
  /** Set by close(): the sockets it destroys are not senders hanging up. */
  let closing = false;
  let inFlight = 0;
  let mostInFlight = 0;

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
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    options.gauge?.enter();
    try {
      await answer(req, res);
    } finally {
      inFlight--;
      options.gauge?.leave();
    }
  }

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
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
      senderGone: false,
    };
    requests.push(record);
    const socket = req.socket;
    // A sender's FIN shows as 'end' then 'close' within a few ms (Node's server ends its half too);
    // a reset or a timed-out fetch as 'close'. Watched only until the answer goes out.
    const hungUp = () => {
      if (!closing) record.senderGone = true;
    };
    if (socket.readableEnded || socket.destroyed) hungUp();
    socket.on("end", hungUp).on("close", hungUp);
    try {
      const reply: Reply = record.path === hookPath ? await script(record) : { status: 404 };
      if (reply === "drop") return void socket.destroy();
      if (reply.delayMs) await hold(reply.delayMs);
      if (closing) return; // close() cut the hold: nothing was answered
      const out = typeof reply.body === "object" ? JSON.stringify(reply.body) : (reply.body ?? "");
      record.status = reply.status;
      record.replyBody = parseJson(out) ?? (out === "" ? undefined : out);
      if (record.senderGone || res.destroyed) {
        record.senderGone = true; // answered, but nobody is there to read it
        return;
      }
      const contentType = typeof reply.body === "object" ? "application/json" : "text/plain";
      res.writeHead(reply.status, {
        ...(out && { "content-type": contentType }),
        ...reply.headers,
      });
      res.end(out);
    } finally {
      record.endedAt = Date.now();
      // A keep-alive socket carries many requests: each removes its own listeners.
      socket.off("end", hungUp).off("close", hungUp);
    }
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
    acceptedIds: () => requests.filter((r) => !r.senderGone).flatMap(answeredYes),
    answeredIds: () => requests.flatMap(answeredYes),
    maxInFlight: () => mostInFlight,
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
      // Flag first, so the sockets destroyed here are not taken for senders hanging up; a released
      // reply then finds the flag and answers nothing.
      closing = true;
      for (const socket of sockets) socket.destroy();
      for (const release of held) release();
      await closed;
    },
  };
  return receiver;
}

/** The ids a request's answer said yes to: all of them on a 2xx, less those in a {"failed"} body. */
function answeredYes(record: ReceivedRequest): string[] {
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
    const answer =
      r.status === undefined ? "no answer" : `${r.status}${r.senderGone ? " (sender gone)" : ""}`;
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
