// A small bar chart of a channel's webhook requests over the last hour, accepted and failed, in
// 5-minute buckets, drawn on the server as inline SVG from its push subscriptions' attempt logs
// (attempts.ts: lastHour). Pure: `now` is passed.

import { CHART_WINDOW_MS, type HourOfAttempts } from "./attempts.ts";
import { formatCount } from "./format.ts";

const BUCKETS = 12; // 5 minutes each

export interface Bucket {
  start: number;
  delivered: number;
  failed: number;
}

/** Requests per bucket from `now - CHART_WINDOW_MS` to `now`: delivered when `error` is null. */
export function bucketize(hours: HourOfAttempts[], now: number): Bucket[] {
  const size = CHART_WINDOW_MS / BUCKETS;
  const from = now - CHART_WINDOW_MS;
  const buckets = Array.from({ length: BUCKETS }, (_, i) => ({
    start: from + i * size,
    delivered: 0,
    failed: 0,
  }));
  for (const hour of hours) {
    for (const attempt of hour.attempts) {
      const at = Date.parse(attempt.at);
      if (at < from || at > now) continue;
      const bucket = buckets[Math.min(BUCKETS - 1, Math.floor((at - from) / size))]!;
      if (attempt.error === null) bucket.delivered++;
      else bucket.failed++;
    }
  }
  return buckets;
}

const WIDTH = 600;
const HEIGHT = 150;
const AXIS = 20; // room for the labels under the bars

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);

export const RequestsChart = (props: { hours: HourOfAttempts[]; now: number }) => {
  const { now } = props;
  const buckets = bucketize(props.hours, now);
  const delivered = buckets.reduce((sum, b) => sum + b.delivered, 0);
  const failed = buckets.reduce((sum, b) => sum + b.failed, 0);
  const top = Math.max(1, ...buckets.map((b) => Math.max(b.delivered, b.failed)));
  const slot = WIDTH / buckets.length;
  const bar = (slot - 8) / 2;
  const base = HEIGHT - AXIS;
  const height = (n: number) => ((HEIGHT - AXIS) * n) / top;
  const x = (ms: number) => (WIDTH * (ms - (now - CHART_WINDOW_MS))) / CHART_WINDOW_MS;
  const short = props.hours.filter((hour) => hour.since !== null);
  // Before the latest `since`, some subscription's requests are missing: shade that part.
  const shortFrom = Math.max(...short.map((hour) => hour.since!));
  return (
    <figure>
      <figcaption class="legend">
        <span class="delivered" data-delivered={delivered}>
          ■ {formatCount(delivered)} delivered
        </span>
        <span class="failed" data-failed={failed}>
          ■ {formatCount(failed)} failed
        </span>
        <span class="muted">requests, last hour (UTC)</span>
      </figcaption>
      <svg
        class="chart"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`${delivered} delivered and ${failed} failed requests in the last hour`}
      >
        {short.length === 0 ? null : (
          <rect class="uncovered" x="0" y="0" width={Math.max(0, x(shortFrom))} height={base} />
        )}
        <line class="axis" x1="0" x2={WIDTH} y1={base} y2={base} />
        {buckets.map((b, i) => {
          const left = i * slot + 4;
          return (
            <g>
              <title>{`${clock(b.start)}: ${b.delivered} delivered, ${b.failed} failed`}</title>
              <rect
                class="delivered"
                x={left}
                y={base - height(b.delivered)}
                width={bar}
                height={height(b.delivered)}
              />
              <rect
                class="failed"
                x={left + bar}
                y={base - height(b.failed)}
                width={bar}
                height={height(b.failed)}
              />
            </g>
          );
        })}
        {(["start", "middle", "end"] as const).map((anchor, i) => (
          <text x={(i * WIDTH) / 2} y={HEIGHT - 5} text-anchor={anchor}>
            {clock(now - CHART_WINDOW_MS + (i * CHART_WINDOW_MS) / 2)}
          </text>
        ))}
      </svg>
      {short.length === 0 ? null : (
        <p class="hint" id="chart-short">
          Each subscription's attempt log keeps about its last 1,000 requests, which is less than
          the hour for:{" "}
          {short.map((hour, i) => (
            <>
              {i === 0 ? "" : ", "}
              <strong data-short-since={new Date(hour.since!).toISOString()}>{hour.name}</strong>{" "}
              (since {clock(hour.since!)})
            </>
          ))}
          . Their earlier requests are not counted (shaded).
        </p>
      )}
    </figure>
  );
};
