// How the dashboard writes numbers, sizes, durations and times for people. Pure: `now` is passed
// in, so a page renders the same for the same data and clock.

/** 1234567 -> "1,234,567". */
export const formatCount = (n: number): string => n.toLocaleString("en-US");

const BYTE_UNITS = ["KiB", "MiB", "GiB", "TiB"];

/** 512 -> "512 B", 1536 -> "1.5 KiB": one decimal below 10 of a unit, none above. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  let value = bytes;
  let unit = "B";
  for (const next of BYTE_UNITS) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${unit}`;
}

const SPANS: [ms: number, unit: string][] = [
  [86_400_000, "d"],
  [3_600_000, "h"],
  [60_000, "min"],
  [1000, "s"],
];

/** 604800000 -> "7 d", 90000 -> "1.5 min", 250 -> "250 ms": the largest unit it is 1 or more of. */
export function formatDuration(ms: number): string {
  for (const [size, unit] of SPANS) {
    if (ms >= size) {
      const value = ms / size;
      return `${Number.isInteger(value) || value >= 10 ? Math.round(value) : value.toFixed(1)} ${unit}`;
    }
  }
  return `${ms} ms`;
}

/** "3 min ago" or "in 20 s" from `now`; "now" within a second. */
export function formatRelative(iso: string, now: number): string {
  const delta = Date.parse(iso) - now;
  if (Math.abs(delta) < 1000) return "now";
  const span = formatDuration(Math.round(Math.abs(delta) / 1000) * 1000);
  return delta < 0 ? `${span} ago` : `in ${span}`;
}

/** A channel's retention in words: "7 d", "1,000 messages", "7 d or 1,000 messages", "none". */
export function formatRetention(retention: {
  maxAgeMs: number | null;
  maxMessages: number | null;
}): string {
  const parts: string[] = [];
  if (retention.maxAgeMs !== null) parts.push(formatDuration(retention.maxAgeMs));
  if (retention.maxMessages !== null) parts.push(`${formatCount(retention.maxMessages)} messages`);
  return parts.length === 0 ? "none" : parts.join(" or ");
}
