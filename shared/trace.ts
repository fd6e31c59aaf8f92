// W3C Trace Context (https://www.w3.org/TR/trace-context/): what a publish's `traceparent` and
// `tracestate` headers become, kept with each message (stream fields `p` and `s`, see
// lua/publish.ts), and the `traceparent` of each webhook request.
//
// The model (OpenTelemetry's for messaging): the publish's traceparent is the message's creation
// context, and travels with the message unchanged: in its stream entry, in the webhook body, in a
// pull. A webhook request is a span of its own: a new span id per attempt, in the messages' trace
// when they share one (its parent: the first message's span, the publish's), otherwise the root
// of a new trace that the body's per-message traceparents link to. streamhook exports no spans;
// the attempt log keeps each request's traceparent beside its messages' ids, so the chain from
// the publish's span to the receiver's is on record.
//
// Hand-written, not @opentelemetry/core: the rules are two small grammars, and its propagator
// works through the OpenTelemetry context API (and three packages in the Worker's bundle) for
// what a regular expression does here; its TraceState also keeps a list over 512 characters,
// which would then be stored with every message.

/** A message's trace context: the publish's, or one streamhook started. */
export interface TraceContext {
  /** `00-<trace id>-<parent id>-<flags>`, lowercase hex. */
  traceparent: string;
  /** The vendors' list, normalized (`,` between members, no blanks); absent when none. */
  tracestate?: string | undefined;
}

// version 2 hex ("ff" is invalid), trace id 32, parent id 16, flags 2; a later version may
// append "-<more>", which a version-00 reader ignores.
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);
const SAMPLED = 0x01;

// key = simple-key / tenant-id "@" system-id; value = printable ASCII but "," and "=", no
// trailing space.
const STATE_KEY =
  /^(?:[a-z][a-z0-9_\-*/]{0,255}|[a-z0-9][a-z0-9_\-*/]{0,240}@[a-z][a-z0-9_\-*/]{0,13})$/;
const STATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const MAX_STATE_MEMBERS = 32;
/** What a tracestate keeps at most: the length every vendor must propagate (the spec's 512). */
export const MAX_TRACESTATE_CHARS = 512;
// Over 512 characters, members longer than this go first (the spec's truncation order).
const LONG_MEMBER_CHARS = 128;

/**
 * The trace context of a request's headers, or null when its traceparent is missing or invalid
 * (the spec: ignore it, as if none came; never refuse the request). The traceparent is rewritten
 * as version 00 with the sampled flag only (the one flag version 00 defines); a tracestate that
 * breaks its grammar is dropped, one over MAX_TRACESTATE_CHARS truncated.
 */
export function parseTraceContext(
  traceparent: string | undefined,
  tracestate: string | undefined,
): TraceContext | null {
  const match = TRACEPARENT.exec(traceparent?.trim() ?? "");
  if (!match) return null;
  const [, version, traceId, parentId, flags, rest] = match as unknown as string[];
  if (version === "ff" || (version === "00" && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || parentId === ZERO_SPAN) return null;
  const sampled = Number.parseInt(flags!, 16) & SAMPLED;
  const context: TraceContext = { traceparent: format(traceId!, parentId!, sampled === SAMPLED) };
  const state = parseTraceState(tracestate);
  if (state) context.tracestate = state;
  return context;
}

/** A tracestate list normalized and within MAX_TRACESTATE_CHARS, or null (none, or invalid). */
export function parseTraceState(value: string | undefined): string | null {
  if (value === undefined) return null;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of value.split(",")) {
    const member = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (member === "") continue;
    const eq = member.indexOf("=");
    if (eq <= 0) return null;
    const key = member.slice(0, eq);
    if (!STATE_KEY.test(key) || !STATE_VALUE.test(member.slice(eq + 1)) || keys.has(key)) {
      return null;
    }
    keys.add(key);
    members.push(member);
  }
  if (members.length === 0 || members.length > MAX_STATE_MEMBERS) return null;
  while (members.join(",").length > MAX_TRACESTATE_CHARS) {
    const long = members.findIndex((m) => m.length > LONG_MEMBER_CHARS);
    members.splice(long === -1 ? members.length - 1 : long, 1);
  }
  return members.length > 0 ? members.join(",") : null;
}

/**
 * A message published without a trace context stores none (65 bytes per message would be a
 * third more Redis memory for small messages, and a 100 MB stream would hold a third fewer of
 * them): the trace streamhook starts for it is derived from where it lives, the same on every
 * read, in Lua (lua/encode.ts: webhooks, pulls) and here (history, dead letters) alike.
 *
 *   trace id  <seed 12 hex><the id's ms, 12 hex><the id's seq mod 2^32, 8 hex>
 *   span id   <seed 8 hex><the id's ms mod 2^32, 8 hex>                 flags 00 (not sampled)
 *
 * The seed is the channel's (traceSeed): 20 hex digits of three hashes of its name, passed to the
 * scripts, so messages of two channels with the same id are in different traces. Hex is written
 * in pieces under 2^24, which every Lua's string.format('%x') writes exactly.
 */
export function traceSeed(channel: string): string {
  const hash = (multiplier: number, start: number) => {
    let h = start;
    for (let i = 0; i < channel.length; i++)
      h = (h * multiplier + channel.charCodeAt(i)) % 2147483647;
    return h === 0 ? 1 : h; // never zero: the trace and span ids start with it
  };
  const [a, b, c] = [hash(131, 7), hash(137, 11), hash(139, 13)];
  return hex(a % 2 ** 24, 6) + hex(b % 2 ** 24, 6) + hex(c % 2 ** 24, 6) + hex(c >>> 24, 2);
}

/** The trace streamhook started for the message `id` of a channel with this `seed`. */
export function derivedTrace(seed: string, id: string): string {
  const [msText, seqText] = id.split("-") as [string, string];
  const ms = BigInt(msText);
  const seq = Number(BigInt(seqText) % 2n ** 32n);
  const high = Number((ms / 2n ** 24n) % 2n ** 24n);
  const low = Number(ms % 2n ** 24n);
  const ms32 = Number(ms % 2n ** 32n);
  const traceId = seed.slice(0, 12) + hex(high, 6) + hex(low, 6) + hex32(seq);
  return format(traceId, seed.slice(12, 20) + hex32(ms32), false);
}

const hex = (n: number, digits: number) => n.toString(16).padStart(digits, "0");
const hex32 = (n: number) => hex(Math.floor(n / 65536), 4) + hex(n % 65536, 4);

/** A message's trace context as stored (fields `p`, `s`), or the one derived for it. */
export function storedTrace(
  seed: string,
  id: string,
  p: string | undefined,
  s: string | undefined,
): TraceContext {
  if (!p) return { traceparent: derivedTrace(seed, id) };
  return s ? { traceparent: p, tracestate: s } : { traceparent: p };
}

/** The trace id of a traceparent this module wrote. */
export const traceIdOf = (traceparent: string) => traceparent.slice(3, 35);
/** The parent (span) id of a traceparent this module wrote. */
export const spanIdOf = (traceparent: string) => traceparent.slice(36, 52);
/** Whether a traceparent this module wrote is sampled. */
export const isSampled = (traceparent: string) =>
  (Number.parseInt(traceparent.slice(53, 55), 16) & SAMPLED) === SAMPLED;

/**
 * The trace context of one webhook request carrying messages with these contexts: a new span in
 * their trace when they all share one (the first message's tracestate with it), else a new
 * trace. Sampled when any message is, so a sampled publish's delivery is recorded by its receiver.
 */
export function requestTrace(messages: TraceContext[]): TraceContext {
  const sampled = messages.some((m) => isSampled(m.traceparent));
  const first = messages[0];
  const traceId = first ? traceIdOf(first.traceparent) : null;
  const shared = traceId !== null && messages.every((m) => traceIdOf(m.traceparent) === traceId);
  if (!shared || !first) return { traceparent: format(randomHex(16), randomHex(8), sampled) };
  const context: TraceContext = { traceparent: format(traceId, randomHex(8), sampled) };
  if (first.tracestate) context.tracestate = first.tracestate;
  return context;
}

function format(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? "01" : "00"}`;
}

// Random ids are never all zeros (invalid): the chance is 2^-64 at worst, but a retry costs nothing.
function randomHex(bytes: number): string {
  for (;;) {
    const hex = Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) =>
      b.toString(16).padStart(2, "0"),
    ).join("");
    if (!/^0+$/.test(hex)) return hex;
  }
}
