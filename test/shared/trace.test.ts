// W3C Trace Context parsing and the webhook request's context (shared/trace.ts): table cases
// from the spec's grammar (https://www.w3.org/TR/trace-context/), each breaking one rule.

import { describe, expect, it } from "vitest";
import {
  derivedTrace,
  isSampled,
  MAX_TRACESTATE_CHARS,
  parseTraceContext,
  parseTraceState,
  requestTrace,
  spanIdOf,
  traceIdOf,
  traceSeed,
} from "../../shared/trace.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const VALID = `00-${TRACE}-${SPAN}-01`;
const FORM = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;

describe("a publish's traceparent", () => {
  it.each([
    ["version 00, sampled", VALID, VALID],
    ["not sampled", `00-${TRACE}-${SPAN}-00`, `00-${TRACE}-${SPAN}-00`],
    [
      "flags other than sampled cleared (version 00 defines only that one)",
      `00-${TRACE}-${SPAN}-03`,
      VALID,
    ],
    ["a later version, read as 00", `cc-${TRACE}-${SPAN}-01`, VALID],
    [
      "a later version with more fields, read as 00",
      `cc-${TRACE}-${SPAN}-01-what-the-future`,
      VALID,
    ],
    ["blanks around it", ` ${VALID} `, VALID],
  ])("keeps %s", (_, header, kept) => {
    expect(parseTraceContext(header, undefined)).toEqual({ traceparent: kept });
  });

  it.each([
    ["missing", undefined],
    ["empty", ""],
    ["version ff", `ff-${TRACE}-${SPAN}-01`],
    ["version 00 with more fields", `${VALID}-extra`],
    ["uppercase hex", `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`],
    ["an all-zero parent id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["a short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`],
    ["a long parent id", `00-${TRACE}-${SPAN}0-01`],
    ["one flag digit", `00-${TRACE}-${SPAN}-1`],
    ["two headers joined", `${VALID}, ${VALID}`],
    ["a later version glued to more", `cc-${TRACE}-${SPAN}-01what`],
    ["not one at all", "hello"],
  ])("ignores one that is %s", (_, header) => {
    expect(parseTraceContext(header, "vendor=value")).toBeNull();
  });
});

describe("a publish's tracestate", () => {
  it.each([
    ["one member", "congo=t61rcWkgMzE", "congo=t61rcWkgMzE"],
    [
      "blanks and empty members dropped",
      " rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t",
      "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    ],
    ["a multi-tenant key", "tenant1@system=x", "tenant1@system=x"],
    ["quotes and backslashes in a value", 'k="a\\b"', 'k="a\\b"'],
    ["a value with inner spaces", "k=a b", "k=a b"],
  ])("keeps %s", (_, header, kept) => {
    expect(parseTraceState(header)).toBe(kept);
  });

  it.each([
    ["an uppercase key", "Congo=x"],
    ["a member without =", "congo"],
    ["an empty value", "congo="],
    ["a tab inside a value", "congo=a\tb"],
    ["a duplicate key", "congo=x,congo=y"],
    ["a value with =", "congo=a=b"],
    ["33 members", Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(",")],
    ["nothing but commas", ",,"],
  ])("drops one with %s", (_, header) => {
    expect(parseTraceState(header)).toBeNull();
    expect(parseTraceContext(VALID, header)).toEqual({ traceparent: VALID });
  });

  it("cuts one over 512 characters, its long members first, then from the end", () => {
    const long = `long=${"x".repeat(200)}`;
    const members = Array.from(
      { length: 20 },
      (_, i) => `k${String(i).padStart(2, "0")}=${"v".repeat(24)}`,
    );
    const cut = parseTraceState([members[0], long, ...members.slice(1)].join(","))!;
    expect(cut.length).toBeLessThanOrEqual(MAX_TRACESTATE_CHARS);
    expect(cut).not.toContain("long=");
    // 20 members of 28 characters and their commas are 579: the last three go.
    expect(cut.split(",")).toEqual(members.slice(0, 17));
  });
});

describe("a trace streamhook starts", () => {
  it("has random ids and is not sampled", () => {
    // A request carrying no message's trace (dev/screenshot.ts's demo records).
    const a = requestTrace([]);
    const b = requestTrace([]);
    expect(a.traceparent).toMatch(FORM);
    expect(isSampled(a.traceparent)).toBe(false);
    expect(traceIdOf(a.traceparent)).not.toBe(traceIdOf(b.traceparent));
    expect(a.tracestate).toBeUndefined();
  });
});

describe("the trace of a message published without one", () => {
  const seed = traceSeed("orders");

  it("is valid, unsampled, and the same on every read", () => {
    const trace = derivedTrace(seed, "1795504124089-0");
    expect(trace).toMatch(FORM);
    expect(isSampled(trace)).toBe(false);
    expect(derivedTrace(traceSeed("orders"), "1795504124089-0")).toBe(trace);
  });

  it.each([
    ["the id's milliseconds", "1795504124089-0", "1795504124090-0"],
    ["the id's sequence", "1795504124089-0", "1795504124089-1"],
  ])("differs with %s (the same channel)", (_, a, b) => {
    expect(traceIdOf(derivedTrace(seed, a))).not.toBe(traceIdOf(derivedTrace(seed, b)));
  });

  it("keeps a sequence's low 32 bits (4 billion entries in one millisecond share)", () => {
    const trace = (id: string) => traceIdOf(derivedTrace(seed, id));
    expect(trace("1795504124089-4294967297")).toBe(trace("1795504124089-1"));
  });

  it("differs between channels for the same id", () => {
    const ids = ["orders", "orders2", "payments", "a", "b", "ä"].map((channel) =>
      traceIdOf(derivedTrace(traceSeed(channel), "1795504124089-0")),
    );
    expect(new Set(ids).size).toBe(ids.length);
  });

  it.each([
    ["the first id", "0-0", "000000000000" + "00000000", "00000000"],
    ["2000-02-29's", "951782400000-1", "00dd9aa6e000" + "00000001", "9aa6e000"],
    [
      "the largest id",
      "18446744073709551615-18446744073709551615",
      "ffffffffffff" + "ffffffff",
      "ffffffff",
    ],
  ])("writes %s parts in hex after the channel's seed", (_, id, traceTail, spanTail) => {
    expect(derivedTrace(seed, id)).toBe(
      `00-${seed.slice(0, 12)}${traceTail}-${seed.slice(12, 20)}${spanTail}-00`,
    );
  });
});

describe("a webhook request's traceparent", () => {
  const other = { traceparent: `00-${"a".repeat(32)}-${"b".repeat(16)}-00` };
  const sameTrace = { traceparent: `00-${TRACE}-${"c".repeat(16)}-00`, tracestate: "x=1" };
  const traced = { traceparent: VALID, tracestate: "congo=t61rcWkgMzE" };

  it("is a new span in the trace its messages share, with the first's tracestate", () => {
    const request = requestTrace([traced, sameTrace]);
    expect(request.traceparent).toMatch(FORM);
    expect(traceIdOf(request.traceparent)).toBe(TRACE);
    expect(spanIdOf(request.traceparent)).not.toBe(SPAN);
    expect(request.tracestate).toBe("congo=t61rcWkgMzE");
  });

  it("gets a new span id on every attempt", () => {
    expect(spanIdOf(requestTrace([traced]).traceparent)).not.toBe(
      spanIdOf(requestTrace([traced]).traceparent),
    );
  });

  it.each([
    ["messages of two traces", [traced, other]],
    [
      "a message published untraced (its own derived trace)",
      [traced, { traceparent: derivedTrace(traceSeed("orders"), "1795504124089-0") }],
    ],
    ["no message at all", []],
  ])("starts a new trace for %s, without a tracestate", (_, messages) => {
    const request = requestTrace(messages);
    expect(request.traceparent).toMatch(FORM);
    expect(traceIdOf(request.traceparent)).not.toBe(TRACE);
    expect(traceIdOf(request.traceparent)).not.toBe("a".repeat(32));
    expect(request.tracestate).toBeUndefined();
  });

  it.each([
    ["sampled when any message is", [other, traced], true],
    ["not sampled when none is", [other, sameTrace], false],
    ["sampled in the shared trace when the first is", [traced, sameTrace], true],
  ])("is %s", (_, messages, sampled) => {
    expect(isSampled(requestTrace(messages).traceparent)).toBe(sampled);
  });
});
