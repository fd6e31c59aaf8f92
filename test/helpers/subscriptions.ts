// Test shorthands for the subscription API, over real HTTP to the Worker.

import { expect } from "vitest";
import { parseSubscription } from "../../shared/subscription.ts";
import type { Stack } from "./stack.ts";

export interface CreatedSubscription {
  name: string;
  secret: string;
  [field: string]: unknown;
}

/** Subscribes `url` to `channel` (201 expected) and returns the subscription with its secret. */
export async function subscribe(
  stack: Stack,
  channel: string,
  body: Record<string, unknown>,
): Promise<CreatedSubscription> {
  const res = await stack.post(`/v1/channels/${channel}/subscriptions`, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as CreatedSubscription;
}

/** Publishes messages (201 expected) and returns their ids in order. */
export async function publish(
  stack: Stack,
  channel: string,
  messages: { data: unknown; type?: string; orderingKey?: string }[],
): Promise<string[]> {
  const res = await stack.post(`/v1/channels/${channel}/messages`, { messages });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { ids: string[] }).ids;
}

export interface PassSummary {
  delivered: number;
  retried: number;
  deadLettered: number;
  filtered: number;
  subscriptions: { channel: string; subscription: string; error?: string }[];
}

/** Runs one delivery pass through POST /v1/deliver. */
export async function runPass(stack: Stack): Promise<PassSummary> {
  const res = await stack.post("/v1/deliver", undefined);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as PassSummary;
}

export async function getSubscription(stack: Stack, channel: string, name: string) {
  const res = await stack.api(`/v1/channels/${channel}/subscriptions/${name}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The consumer group of a subscription, as stored (named after its identity: subscription.ts). */
export async function groupOf(stack: Stack, channel: string, name: string): Promise<string> {
  const json = await stack.redis.hget(stack.keys.subscriptions(channel), name);
  if (json === null) throw new Error(`no subscription ${channel}/${name}`);
  return parseSubscription(channel, name, json, false).group;
}

/** XPENDING's count for a subscription's group on the channel. */
export async function pendingCount(stack: Stack, channel: string, name: string): Promise<number> {
  const group = await groupOf(stack, channel, name);
  return ((await stack.redis.xpending(stack.keys.channel(channel), group)) as [number])[0];
}

/** The score of a {p}:due member (when the unit is due), or null when it has none. */
export async function dueAt(stack: Stack, member: string): Promise<number | null> {
  const score = await stack.redis.zscore(stack.keys.due(), member);
  return score === null ? null : Number(score);
}

/** Waits until the wall clock passes `at` (a due time read from Redis): observed, not guessed. */
export async function waitUntil(at: number): Promise<void> {
  const wait = at - Date.now();
  if (wait > 0) await sleep(wait + 5);
}
