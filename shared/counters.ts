// The delivery counters of {p}:metrics:<ch> (keys.ts), which GET /v1/metrics exposes: what each
// counter is, its field, and the latency buckets. The worker adds to them once per report (a
// deliverer run's final round: worker/rounds.ts, lua/report.ts), never once per message; dead letters are counted
// by the script that parks them (lua/dead-letter.ts), exactly once each.
//
//   attempts:<result>   webhook requests by result (RESULTS)
//   latency:<le>        messages delivered (2xx) whose publish-to-2xx time was at most <le>
//                       seconds and above the bucket before: NOT cumulative, so a report increments
//                       only the buckets its messages fell in (the scrape sums them up)
//   latencyMs           the sum of those times, in ms
//   deadLettered        messages parked in the dead letters
//
// Messages delivered are the latency buckets' sum: every delivered message lands in one bucket,
// so the delivered counter costs no command of its own.

import type { AttemptStatus } from "./attempt-log.ts";
import { metricsField } from "./keys.ts";

/**
 * What became of a webhook request: accepted (2xx), answered with another status class (a 3xx
 * is a failure: redirects are not followed), or no whole answer (timeout, network error; a 2xx
 * whose body broke off is one of these).
 */
export const RESULTS = [
  "success",
  "http_3xx",
  "http_4xx",
  "http_5xx",
  "timeout",
  "network",
] as const;
export type Result = (typeof RESULTS)[number];

/** The result of a request that ended with `status`, accepted or not. */
export function resultOf(status: AttemptStatus, accepted: boolean): Result {
  if (accepted) return "success";
  if (status === "timeout" || status === "network") return status;
  if (status >= 500) return "http_5xx";
  if (status >= 400) return "http_4xx";
  // Anything else not accepted is a 3xx (fetch knows no 1xx; a 2xx that failed is not a status).
  return "http_3xx";
}

/**
 * Upper bounds (seconds) of the publish-to-2xx latency buckets, then +Inf. From tens of
 * milliseconds (a healthy subscriber, kicked on publish) to a day (retries back off to 6 h).
 */
export const LATENCY_BUCKETS_SECONDS = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400,
] as const;

/** The `le` label of each bucket, +Inf last. */
export const LATENCY_LE = [...LATENCY_BUCKETS_SECONDS.map(String), "+Inf"];

/** The index in LATENCY_LE of the bucket a latency (ms) falls in. Negative (clock skew) is 0. */
export function bucketOf(latencyMs: number): number {
  const seconds = Math.max(0, latencyMs) / 1000;
  const i = LATENCY_BUCKETS_SECONDS.findIndex((le) => seconds <= le);
  return i === -1 ? LATENCY_BUCKETS_SECONDS.length : i;
}

export const attemptsCounter = (result: Result) => `attempts:${result}`;
export const latencyCounter = (bucket: number) => `latency:${LATENCY_LE[bucket]}`;
export const LATENCY_SUM_COUNTER = "latencyMs";
export const DEAD_LETTERED_COUNTER = "deadLettered";

/** Every field a subscription can have in {p}:metrics:<ch>: what deleting it removes. */
export const counterFields = (sub: string): string[] =>
  [
    ...RESULTS.map(attemptsCounter),
    ...LATENCY_LE.map((_, i) => latencyCounter(i)),
    LATENCY_SUM_COUNTER,
    DEAD_LETTERED_COUNTER,
  ].map((counter) => metricsField(sub, counter));
