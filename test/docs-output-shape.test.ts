// How a docs example's printed output is held against the output its page shows
// (test/helpers/output-shape.ts, used by docs-examples.test.ts).

import { describe, expect, it } from "vitest";
import { outputMismatch } from "./helpers/output-shape.ts";

describe("an example's output against the output shown", () => {
  it.each([
    [
      "other ids and times",
      '{"id":"1-0","at":"2026-01-01T00:00:00Z"}',
      '{"id":"9-3","at":"2027-05-05T01:02:03Z"}',
    ],
    [
      "an array's elements each like the first shown",
      '{"ids":["1-0"]}',
      '{"ids":["2-0","2-1","2-2"]}',
    ],
    [
      "an empty array shown, any array printed",
      '{"messages":[],"acked":2}',
      '{"messages":[{"id":"1-0"}],"acked":0}',
    ],
    ["null as null", '{"next":null}', '{"next":null}'],
    ["text, with ... for any text", "whsec_...", "whsec_abc+/="],
    ["lines in order, others passed over", '{"a":1}\nready', 'noise\n{"a":2}\nmore noise\nready'],
  ])("matches %s", (_, shown, printed) => {
    expect(outputMismatch(shown, printed)).toBeNull();
  });

  it.each([
    ["a key missing", '{"id":"1-0","type":"x"}', '{"id":"1-0"}'],
    ["a key more", '{"id":"1-0"}', '{"id":"1-0","traceparent":"00-..."}'],
    ["a value of another type", '{"acked":2}', '{"acked":"2"}'],
    ["null for a string", '{"next":"1-0"}', '{"next":null}'],
    ["an array element of another shape", '{"ids":["1-0"]}', '{"ids":["1-0",{"id":"1-1"}]}'],
    ["text that differs", "whsec_...", "sk_abc"],
    ["lines out of order", '{"a":1}\nready', 'ready\n{"a":1}'],
    ["nothing printed", '{"a":1}', ""],
  ])("refuses %s", (_, shown, printed) => {
    expect(outputMismatch(shown, printed)).not.toBeNull();
  });
});
