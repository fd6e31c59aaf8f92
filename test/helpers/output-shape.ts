// Whether what a docs example printed has the shape its page shows. Ids, times and secrets differ
// from run to run, so a shown line is a pattern, not a value:
//
//   a JSON line      matches a JSON line with the same keys at every level and values of the same
//                    types (every element of an array like the array's first shown element)
//   any other line   matches a line equal to it, where `...` stands for any text
//
// The shown lines must match printed lines in the same order; printed lines in between (a
// receiver's log, a command's progress) are passed over.

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What is wrong with `printed` against `shown`, or null when it has the shape shown. */
export function outputMismatch(shown: string, printed: string): string | null {
  const lines = printed.split("\n");
  let next = 0;
  for (const want of shown.split("\n").filter((line) => line.trim() !== "")) {
    const at = lines.findIndex((line, i) => i >= next && lineMatches(want, line));
    if (at === -1) {
      return `no printed line (after line ${next}) has the shape of: ${want}\nprinted:\n${printed}`;
    }
    next = at + 1;
  }
  return null;
}

function lineMatches(want: string, line: string): boolean {
  const shown = parse(want);
  if (shown !== undefined) {
    const got = parse(line);
    return got !== undefined && sameShape(shown, got);
  }
  const pattern = want
    .trim()
    .split("...")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${pattern}$`).test(line.trim());
}

function parse(line: string): Json | undefined {
  const text = line.trim();
  if (!text.startsWith("{") && !text.startsWith("[")) return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

function sameShape(shown: Json, got: Json): boolean {
  if (Array.isArray(shown)) {
    const first = shown[0];
    return Array.isArray(got) && (first === undefined || got.every((g) => sameShape(first, g)));
  }
  if (shown !== null && typeof shown === "object") {
    if (got === null || typeof got !== "object" || Array.isArray(got)) return false;
    const keys = Object.keys(shown).sort();
    const gotKeys = Object.keys(got).sort();
    return (
      keys.join() === gotKeys.join() &&
      keys.every((key) => sameShape(shown[key] ?? null, got[key] ?? null))
    );
  }
  return shown === null ? got === null : typeof shown === typeof got;
}
