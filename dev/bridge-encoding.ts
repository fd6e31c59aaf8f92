// Redis replies as Upstash writes them in JSON.
//
// The bridge reads every reply as bytes (RESP2 via ioredis' *Buffer calls), so it can send them
// the two ways Upstash does:
//   - `Upstash-Encoding: base64` (what @upstash/redis asks for by default): every string, at any
//     depth, is the base64 of its bytes, so binary and invalid UTF-8 survive; except a top-level
//     `OK` status, which Upstash sends as plain "OK" and the client's decoder expects as such.
//   - otherwise: strings are the UTF-8 text of the bytes.
// Integers stay JSON numbers, nil stays null, arrays stay arrays (RESP2 shapes: flat HGETALL,
// nested stream entries). Error replies (`{"error"}`) are never encoded.

export type Json = string | number | null | Json[];

const OK = Buffer.from("OK");

/** The JSON for one reply: a command's `result`, or one entry's in a pipeline. */
export function encodeReply(reply: unknown, base64: boolean): Json {
  if (base64 && Buffer.isBuffer(reply) && reply.equals(OK)) return "OK";
  return encode(reply, base64);
}

function encode(reply: unknown, base64: boolean): Json {
  if (Buffer.isBuffer(reply)) return reply.toString(base64 ? "base64" : "utf8");
  if (typeof reply === "string") return base64 ? Buffer.from(reply).toString("base64") : reply;
  if (typeof reply === "number") return reply;
  if (reply === null || reply === undefined) return null;
  if (Array.isArray(reply)) return reply.map((item) => encode(item, base64));
  // An error nested in an array (a Lua table holding one) is data here, so it is encoded.
  if (reply instanceof Error) return encode(reply.message, base64);
  return String(reply);
}
