// What an Upstash REST request asks Redis to do: one command, a pipeline, or a transaction.
//
// Upstash accepts a command three ways, and @upstash/redis (plus curl users) rely on all three:
//   POST /             ["SET","k","v"]             one command as a JSON array
//   POST /pipeline     [["SET","k","v"],["GET","k"]] commands in order, not atomic
//   POST /multi-exec   (same shape)                 commands inside MULTI/EXEC
//   GET|POST /set/k/v  path form: each percent-decoded segment is an argument; a POST body is
//                      appended raw (bytes, so binary values need no escaping), then each query
//                      parameter as `NAME value` (`/set/k?EX=100` with a body), `_token` excepted.
// Anything else is a BadRequest, which the bridge answers with 400 before touching Redis.

/** A Redis argument: text from JSON, or raw bytes from the path form and the body. */
export type Arg = string | Buffer;
export type Command = { name: string; args: Arg[] };

export type Call =
  | { kind: "single"; command: Command }
  | { kind: "pipeline"; commands: Command[] }
  | { kind: "multi-exec"; commands: Command[] };

export class BadRequest extends Error {
  override name = "BadRequest";
}

// Commands that change the state of the one connection every request shares: a transaction
// opened by one request would swallow the next request's commands, SELECT would move everyone to
// another database, SUBSCRIBE would stop replies altogether. /multi-exec is the way to MULTI.
const CONNECTION_STATE = new Set(
  ["multi", "exec", "discard", "watch", "unwatch", "select", "swapdb", "auth", "hello", "reset"]
    .concat(["quit", "monitor", "sync", "psync", "subscribe", "psubscribe", "ssubscribe"])
    .concat(["unsubscribe", "punsubscribe", "sunsubscribe"]),
);

/** Reads the request's target (`req.url`, raw) and body into the call it asks for. */
export function parseCall(target: string, method: string, body: Buffer): Call {
  const queryAt = target.indexOf("?");
  const path = queryAt === -1 ? target : target.slice(0, queryAt);
  const query = new URLSearchParams(queryAt === -1 ? "" : target.slice(queryAt + 1));
  // A trailing slash is not an empty last argument: `/pipeline/`, `/get/k/` mean what they say.
  const route = path.replace(/\/+$/, "");
  if (route === "") return { kind: "single", command: checked(jsonCommand(parseJson(body))) };
  if (route === "/pipeline" || route === "/multi-exec") {
    const commands = jsonCommands(parseJson(body)).map(checked);
    return route === "/pipeline"
      ? { kind: "pipeline", commands }
      : { kind: "multi-exec", commands };
  }
  return { kind: "single", command: checked(pathCommand(route, method, body, query)) };
}

function parseJson(body: Buffer): unknown {
  if (body.length === 0) {
    throw new BadRequest("ERR empty body: send a JSON array, or use the path form /<cmd>/<arg>");
  }
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (error) {
    throw new BadRequest(`ERR malformed JSON body: ${(error as Error).message}`);
  }
}

function jsonCommand(value: unknown): Command {
  if (!Array.isArray(value)) throw new BadRequest("ERR the body must be a JSON array");
  const words: string[] = [];
  for (const item of value) {
    // @upstash/redis sends numbers unquoted (EX 100, scores); Redis wants their text.
    if (typeof item === "number" && Number.isFinite(item)) words.push(String(item));
    else if (typeof item === "string") words.push(item);
    else
      throw new BadRequest(`ERR command arguments must be strings or numbers, got ${json(item)}`);
  }
  const [name, ...args] = words;
  if (name === undefined || name === "") throw new BadRequest("ERR empty command");
  return { name, args };
}

function jsonCommands(value: unknown): Command[] {
  if (!Array.isArray(value)) throw new BadRequest("ERR the body must be a JSON array of commands");
  if (value.length === 0) throw new BadRequest("ERR empty pipeline: send at least one command");
  return value.map((item) => {
    if (!Array.isArray(item)) {
      throw new BadRequest(`ERR each command must be a JSON array, got ${json(item)}`);
    }
    return jsonCommand(item);
  });
}

function pathCommand(path: string, method: string, body: Buffer, query: URLSearchParams) {
  const [first, ...rest] = path.slice(1).split("/").map(percentDecode);
  const name = first?.toString("utf8") ?? "";
  if (name === "") throw new BadRequest("ERR empty command");
  const args: Arg[] = rest;
  if ((method === "POST" || method === "PUT") && body.length > 0) args.push(body);
  for (const [key, value] of query) {
    if (key === "_token") continue;
    // A bare flag (`?NX`) is one word; `?EX=100` is two.
    args.push(key);
    if (value !== "") args.push(value);
  }
  return { name, args };
}

/** Percent-decodes to bytes, not text, so `%FF` reaches Redis as the byte 0xFF. */
function percentDecode(segment: string): Buffer {
  const bytes: number[] = [];
  const raw = Buffer.from(segment, "utf8");
  for (let i = 0; i < raw.length; i++) {
    const byte = raw[i]!;
    const hex = byte === 0x25 ? raw.subarray(i + 1, i + 3).toString("latin1") : "";
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else if (byte === 0x25) {
      throw new BadRequest(`ERR malformed percent-encoding in path segment ${json(segment)}`);
    } else {
      bytes.push(byte);
    }
  }
  return Buffer.from(bytes);
}

function checked(command: Command): Command {
  if (CONNECTION_STATE.has(command.name.toLowerCase())) {
    throw new BadRequest(
      `ERR ${command.name} is not supported by the bridge: all requests share one connection`,
    );
  }
  return command;
}

function json(value: unknown): string {
  return JSON.stringify(value) ?? String(value);
}
