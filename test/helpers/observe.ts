// Test shorthands for what shows how delivery went: the attempt log and GET /v1/metrics, read
// over real HTTP as a dashboard or Prometheus would.

import { expect } from "vitest";
import type { AttemptView } from "../../shared/attempt-log.ts";
import type { ReceivedRequest } from "./receiver.ts";
import type { Stack } from "./stack.ts";

/** A record of GET .../attempts. */
export type Attempt = AttemptView;

/** A subscription's whole attempt log, oldest first. */
export async function attemptLog(stack: Stack, channel: string, name: string) {
  // About the last 1,000 requests, up to about 2,000 (shared/attempt-log.ts): pages of 1,000.
  const all: Attempt[] = [];
  let after: string | null = null;
  do {
    const query: string = after === null ? "" : `&after=${after}`;
    const res = await stack.api(
      `/v1/channels/${channel}/subscriptions/${name}/attempts?limit=1000${query}`,
    );
    expect(res.status, await res.clone().text()).toBe(200);
    const page = (await res.json()) as { attempts: Attempt[]; next: string | null };
    all.push(...page.attempts);
    after = page.next;
  } while (after !== null);
  return all.reverse();
}

/**
 * [first message id, last message id, messages, attempt] of each request: what a log record and
 * a request share (a record's attempt is the highest of its messages'). A batch can mix attempts
 * (a retry taken beside new messages), so two requests may share their first id and attempt;
 * with the last id and the count, the same key twice is the same batch sent twice.
 */
export const requestKeys = (requests: ReceivedRequest[]) =>
  requests.map((r) => {
    const messages = r.body!.messages;
    const attempt = Math.max(...messages.map((m) => m.attempt));
    return [messages[0]!.id, messages.at(-1)!.id, messages.length, attempt];
  });
export const recordKeys = (log: Attempt[]) =>
  log.map((a) => [a.firstId, a.lastId, a.messages, a.attempt]);

/**
 * GET /v1/metrics as sample -> value (`name{labels}` as written), checking the format on the
 * way: the content type, a TYPE line before each family's samples, and each sample's shape.
 */
export async function scrapeMetrics(client: Pick<Stack, "api">) {
  const res = await client.api("/v1/metrics");
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\w+) (.+)$/.exec(line);
    if (meta) {
      if (meta[1] === "TYPE") typed.set(meta[2]!, meta[3]!);
      continue;
    }
    const sample = /^(\w+)(\{(?:\w+="[^"]*",?)*\})? (\S+)$/.exec(line);
    expect(sample, `a sample line: ${line}`).not.toBeNull();
    const [, name, labels, value] = sample!;
    const family = typed.has(name!) ? name! : name!.replace(/_(bucket|sum|count)$/, "");
    expect(typed.has(family), `a TYPE line before ${line}`).toBe(true);
    samples.set(`${name}${labels ?? ""}`, Number(value));
  }
  return { text, samples, typed };
}

/** The labels of a subscription's samples, with more after them (`result="success"`). */
export const labelsOf = (channel: string, sub: string, extra = "") =>
  `{channel="${channel}",subscription="${sub}"${extra ? `,${extra}` : ""}}`;
