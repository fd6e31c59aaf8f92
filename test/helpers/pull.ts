// Test shorthands for pull subscriptions (functions/routes/pull.ts), over real HTTP as a consumer
// would call them.

import { expect } from "vitest";
import type { Stack } from "./stack.ts";

/** A pulled message as the API answers it. */
export interface Pulled {
  id: string;
  type: string | null;
  data: unknown;
  publishedAt: string;
  attempt: number;
  redrivenFrom?: string;
  /** A delayed message's id, as its publish answered it. */
  delayedId?: string;
  /** The publish's W3C traceparent (null: stored before tracing), and its tracestate. */
  traceparent: string | null;
  tracestate?: string;
}

/**
 * Vars for exact command counts: no trim comes due (lua/trim.ts), and pulls look for expired
 * leases only when a test makes them (PULL_LOOK_EVERY_MS far away, or after a nack).
 */
export const QUIET_PULLS = { TRIM_MIN_INTERVAL_MS: "3600000", PULL_LOOK_EVERY_MS: "3600000" };

export const pullPath = (channel: string, name = "work") =>
  `/v1/channels/${channel}/subscriptions/${name}`;

/** POST .../{name}/<action> (pull, ack, nack, extend, ...): must answer 200; its JSON. */
export async function pullAction<T = Record<string, unknown>>(
  stack: Stack,
  channel: string,
  name: string,
  action: string,
  body: unknown,
): Promise<T> {
  const res = await stack.post(`${pullPath(channel, name)}/${action}`, body);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

/** One pull's answer. */
export const pullOnce = (
  stack: Stack,
  channel: string,
  name: string,
  body: Record<string, unknown> = {},
) => pullAction<{ messages: Pulled[]; acked: number }>(stack, channel, name, "pull", body);
