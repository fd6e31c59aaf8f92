// A small bar chart of webhook requests over the last hour, delivered and failed, drawn on the
// server as inline SVG from the subscriptions' attempt logs (attempts.ts). Pure: `now` is passed.
//
// TODO(attempts): untested until the attempts branch is merged (the attempt log's route).

import type { AttemptLog } from "./attempts.ts";
import { formatCount } from "./format.ts";

export const CHART_WINDOW_MS = 3_600_000;
const BUCKETS = 12; // 5 minutes each

export interface Bucket {
  start: number;
  delivered: number;
  failed: number;
}

/** Requests per bucket from `now - CHART_WINDOW_MS` to `now`: delivered when `error` is null. */
export function bucketize(logs: AttemptLog[], now: number): Bucket[] {
  const size = CHART_WINDOW_MS / BUCKETS;
  const from = now - CHART_WINDOW_MS;
  const buckets = Array.from({ length: BUCKETS }, (_, i) => ({
    start: from + i * size,
    delivered: 0,
    failed: 0,
  }));
  for (const log of logs) {
    if (log.kind !== "log") continue;
    for (const attempt of log.attempts) {
      const at = Date.parse(attempt.at);
      if (at < from || at > now) continue;
      const bucket = buckets[Math.min(BUCKETS - 1, Math.floor((at - from) / size))]!;
      if (attempt.error === null) bucket.delivered++;
      else bucket.failed++;
    }
  }
  return buckets;
}

/** Whether some log was cut short before it reached back a whole hour. */
function partial(logs: AttemptLog[], now: number): boolean {
  return logs.some((log) => {
    if (log.kind !== "log" || !log.more) return false;
    const oldest = log.attempts.at(-1);
    return oldest !== undefined && Date.parse(oldest.at) > now - CHART_WINDOW_MS;
  });
}

const WIDTH = 600;
const HEIGHT = 150;
const AXIS = 20; // room for the labels under the bars

export const RequestsChart = (props: { logs: AttemptLog[]; now: number }) => {
  const unavailable = props.logs.find((log) => log.kind === "unavailable");
  if (unavailable?.kind === "unavailable") {
    return <p class="hint">No chart: the attempt log could not be read ({unavailable.reason}).</p>;
  }
  const buckets = bucketize(props.logs, props.now);
  const delivered = buckets.reduce((sum, b) => sum + b.delivered, 0);
  const failed = buckets.reduce((sum, b) => sum + b.failed, 0);
  const top = Math.max(1, ...buckets.map((b) => Math.max(b.delivered, b.failed)));
  const slot = WIDTH / buckets.length;
  const bar = (slot - 8) / 2;
  const height = (n: number) => ((HEIGHT - AXIS) * n) / top;
  const clock = (ms: number) => new Date(ms).toISOString().slice(11, 16);
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
        {partial(props.logs, props.now) ? (
          <span class="muted">(only the newest requests of busy subscriptions)</span>
        ) : null}
      </figcaption>
      <svg
        class="chart"
        viewBox={`0 0 ${WIDTH} ${HEIGHT}`}
        role="img"
        aria-label={`${delivered} delivered and ${failed} failed requests in the last hour`}
      >
        <line class="axis" x1="0" x2={WIDTH} y1={HEIGHT - AXIS} y2={HEIGHT - AXIS} />
        {buckets.map((b, i) => {
          const x = i * slot + 4;
          const base = HEIGHT - AXIS;
          return (
            <g>
              <title>{`${clock(b.start)}: ${b.delivered} delivered, ${b.failed} failed`}</title>
              <rect
                class="delivered"
                x={x}
                y={base - height(b.delivered)}
                width={bar}
                height={height(b.delivered)}
              />
              <rect
                class="failed"
                x={x + bar}
                y={base - height(b.failed)}
                width={bar}
                height={height(b.failed)}
              />
            </g>
          );
        })}
        {[0, buckets.length / 2, buckets.length].map((i) => (
          <text x={Math.min(WIDTH - 30, i * slot)} y={HEIGHT - 5}>
            {clock(props.now - CHART_WINDOW_MS + (i * CHART_WINDOW_MS) / buckets.length)}
          </text>
        ))}
      </svg>
    </figure>
  );
};
