// GET /v1/metrics' answer: the delivery counters and gauges of some channels in the Prometheus
// text exposition format (version 0.0.4). Pure: shared/metrics.ts reads the numbers.
//
// Written by hand rather than with a client library: those keep their own registry of values in
// process memory (prom-client needs Node), while here every value comes from Redis at scrape
// time, and the format is a few lines per family.

import {
  attemptsCounter,
  DEAD_LETTERED_COUNTER,
  LATENCY_LE,
  LATENCY_SUM_COUNTER,
  latencyCounter,
  RESULTS,
} from "./counters.ts";

export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** One subscription's figures. */
export interface SubscriptionFigures {
  name: string;
  /** A push subscription (pull ones make no webhook requests: no delivery counters). */
  push: boolean;
  /** Null while Redis cannot count it (after a replay); undefined without a consumer group. */
  lag: number | null | undefined;
  pending: number | undefined;
  /** Its fields of {p}:metrics:<ch>, without the "<sub>:" prefix. */
  counters: Record<string, number>;
}

export interface ChannelFigures {
  name: string;
  /** Messages ever added to its stream (XINFO STREAM entries-added); null when unknown. */
  published: number | null;
  subscriptions: SubscriptionFigures[];
}

type Family = { name: string; help: string; type: "counter" | "gauge" | "histogram" };

const FAMILIES = {
  published: {
    name: "streamhook_messages_published_total",
    help: "Messages published to the channel since its stream was made (its entries-added).",
    type: "counter",
  },
  delivered: {
    name: "streamhook_messages_delivered_total",
    help: "Messages a push subscription's endpoint accepted (2xx, not listed in failed).",
    type: "counter",
  },
  attempts: {
    name: "streamhook_delivery_attempts_total",
    help: "Webhook requests by result: success (2xx), http_3xx, http_4xx, http_5xx, timeout, network (no whole answer).",
    type: "counter",
  },
  dead: {
    name: "streamhook_messages_dead_lettered_total",
    help: "Messages parked in the subscription's dead letters after maxAttempts.",
    type: "counter",
  },
  lag: {
    name: "streamhook_subscription_lag",
    help: "Messages of the channel not yet sent to the subscription (absent while Redis cannot count them, just after a replay).",
    type: "gauge",
  },
  pending: {
    name: "streamhook_subscription_pending",
    help: "Messages sent to the subscription and awaiting their ack or retry.",
    type: "gauge",
  },
  latency: {
    name: "streamhook_delivery_latency_seconds",
    help: "Time from a message's publish (its id) to the 2xx that delivered it, retries included.",
    type: "histogram",
  },
} satisfies Record<string, Family>;

/** A label value, escaped as the format asks (names here never need it, but stay safe). */
const escapeLabel = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

const labels = (pairs: Record<string, string>) =>
  `{${Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",")}}`;

/** The exposition of these channels' figures, every family with its HELP and TYPE. */
export function exposition(channels: ChannelFigures[]): string {
  const lines = new Map<Family, string[]>(Object.values(FAMILIES).map((f) => [f, []]));
  const sample = (f: Family, suffix: string, pairs: Record<string, string>, value: number) =>
    lines.get(f)!.push(`${f.name}${suffix}${labels(pairs)} ${value}`);
  for (const channel of channels) {
    if (channel.published !== null) {
      sample(FAMILIES.published, "", { channel: channel.name }, channel.published);
    }
    for (const sub of channel.subscriptions) {
      const at = { channel: channel.name, subscription: sub.name };
      const count = (counter: string) => sub.counters[counter] ?? 0;
      if (sub.lag != null) sample(FAMILIES.lag, "", at, sub.lag);
      if (sub.pending !== undefined) sample(FAMILIES.pending, "", at, sub.pending);
      sample(FAMILIES.dead, "", at, count(DEAD_LETTERED_COUNTER));
      if (!sub.push) continue;
      for (const result of RESULTS) {
        sample(FAMILIES.attempts, "", { ...at, result }, count(attemptsCounter(result)));
      }
      // The stored buckets are not cumulative (counters.ts): summed here, in order.
      let delivered = 0;
      LATENCY_LE.forEach((le, i) => {
        delivered += count(latencyCounter(i));
        sample(FAMILIES.latency, "_bucket", { ...at, le }, delivered);
      });
      sample(FAMILIES.latency, "_sum", at, count(LATENCY_SUM_COUNTER) / 1000);
      sample(FAMILIES.latency, "_count", at, delivered);
      sample(FAMILIES.delivered, "", at, delivered);
    }
  }
  const out: string[] = [];
  for (const [family, samples] of lines) {
    out.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    out.push(...samples);
  }
  return `${out.join("\n")}\n`;
}
