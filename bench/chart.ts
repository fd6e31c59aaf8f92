// An SVG chart of a benchmark run, drawn by hand (no dependency): throughput by scenario, each
// streamhook bar beside its baseline, on a log scale; and p50/p99 latencies.

import type { Results } from "./results.ts";

interface Bar {
  label: string;
  value: number;
  baseline?: number;
}

const WIDTH = 900;
const ROW = 22;
const LEFT = 250;
const RIGHT = 150;
const COLOURS = { ours: "#2563eb", baseline: "#9ca3af", p99: "#f59e0b" };

const escapeXml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function panel(title: string, bars: Bar[], unit: string, top: number, log: boolean) {
  const max = Math.max(1, ...bars.flatMap((b) => [b.value, b.baseline ?? 0]));
  const span = WIDTH - LEFT - RIGHT;
  const scale = (v: number) =>
    log ? (Math.log10(Math.max(v, 1)) / Math.log10(max)) * span : (v / max) * span;
  const parts = [`<text x="10" y="${top + 14}" font-weight="bold">${escapeXml(title)}</text>`];
  bars.forEach((bar, i) => {
    const y = top + 26 + i * ROW;
    parts.push(
      `<text x="${LEFT - 8}" y="${y + 13}" text-anchor="end">${escapeXml(bar.label)}</text>`,
    );
    const w = scale(bar.value);
    const end = Math.max(w, bar.baseline === undefined ? 0 : scale(bar.baseline));
    parts.push(
      `<rect x="${LEFT}" y="${y + 1}" width="${w.toFixed(1)}" height="${bar.baseline === undefined ? 16 : 9}" fill="${COLOURS.ours}"/>`,
    );
    if (bar.baseline !== undefined) {
      parts.push(
        `<rect x="${LEFT}" y="${y + 10}" width="${scale(bar.baseline).toFixed(1)}" height="7" fill="${COLOURS.baseline}"/>`,
      );
    }
    const text = `${Math.round(bar.value).toLocaleString("en")}${bar.baseline === undefined ? "" : ` / ${Math.round(bar.baseline).toLocaleString("en")}`} ${unit}`;
    parts.push(`<text x="${(LEFT + end + 6).toFixed(1)}" y="${y + 13}">${escapeXml(text)}</text>`);
  });
  return { svg: parts.join("\n"), height: 36 + bars.length * ROW };
}

export function chart(r: Results): string {
  const throughput: Bar[] = [];
  for (const p of r.publish ?? []) {
    throughput.push({
      label: `publish, concurrency ${p.concurrency}`,
      value: p.single.perSecond,
      baseline: p.baseline.perSecond,
    });
    throughput.push({
      label: `batch publish (100), conc. ${p.concurrency}`,
      value: p.batch.perSecond,
    });
  }
  for (const d of r.delivery ?? []) {
    throughput.push({
      label: `deliver ${d.subscriptions} sub(s), batch ${d.batchSize}`,
      value: d.perSecond,
      baseline: d.reference,
    });
  }
  const latency: Bar[] = [];
  for (const p of r.publish ?? []) {
    latency.push({
      label: `publish p50/p99, conc. ${p.concurrency}`,
      value: p.single.p50Ms,
      baseline: p.single.p99Ms,
    });
  }
  if (r.latency) {
    latency.push({
      label: "publish -> receive p50/p99",
      value: r.latency.p50Ms,
      baseline: r.latency.p99Ms,
    });
  }
  const a = panel(
    "Throughput, messages/s (log scale): streamhook (blue) vs baseline (grey)",
    throughput,
    "/s",
    10,
    true,
  );
  const b = panel("Latency, ms: p50 (blue) and p99 (grey)", latency, "ms", 20 + a.height, false);
  const height = 40 + a.height + b.height;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<g transform="translate(0,0)">${a.svg}</g>
<g>${b.svg}</g>
<text x="10" y="${height - 8}" fill="#6b7280">streamhook npm run bench, ${escapeXml(r.startedAt)}</text>
</svg>
`;
}
