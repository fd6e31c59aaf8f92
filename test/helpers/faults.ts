// Test shorthands for lost replies: bridge fault matchers that pick one Redis call of the
// product out of the traffic, and the schedule invariant the product promises, read from Redis.
//
// A script call reaches the bridge as EVALSHA <sha1 of the source> (or EVAL <source> when Redis
// did not have it), with its keys among the arguments, so a rule can single out "the close
// script on this channel" without knowing what else the request carries (@upstash/redis
// pipelines concurrent calls into one request).

import { createHash } from "node:crypto";
import type { Command } from "../../dev/bridge-request.ts";
import { parseDueMember, retryMember, type Unit, wakeMember } from "../../shared/keys.ts";
import { DEAD_LETTER_LUA } from "../../shared/lua/dead-letter.ts";
import { LEDGER_LUA } from "../../shared/lua/ledger.ts";
import { PUBLISH_LUA } from "../../shared/lua/publish.ts";
import { REPORT_LUA } from "../../shared/lua/report.ts";
import { TAKE_LUA } from "../../shared/lua/take.ts";
import { BRIDGE_TOKEN, type Stack } from "./stack.ts";

type Match = (commands: readonly Command[]) => boolean;

const sha1 = (text: string) => createHash("sha1").update(text).digest("hex");

const named = (command: Command, name: string) => command.name.toUpperCase() === name;
const hasArgs = (command: Command, args: string[]) =>
  args.every((arg) => command.args.some((a) => String(a) === arg));

/** A request that runs the script `source` with all of `args` among its keys or arguments. */
export function runsScript(source: string, ...args: string[]): Match {
  const sha = sha1(source);
  return (commands) =>
    commands.some(
      (c) =>
        ((named(c, "EVALSHA") && String(c.args[0]) === sha) ||
          (named(c, "EVAL") && String(c.args[0]) === source)) &&
        hasArgs(c, args),
    );
}

/** A request with a command `name` that has all of `args` among its arguments. */
export function sends(name: string, ...args: string[]): Match {
  const upper = name.toUpperCase();
  return (commands) => commands.some((c) => named(c, upper) && hasArgs(c, args));
}

/** The scripts a delivery runs (lua/*.ts), for loadScripts. */
export const DELIVERY_SCRIPTS = [PUBLISH_LUA, TAKE_LUA, REPORT_LUA, DEAD_LETTER_LUA, LEDGER_LUA];

/**
 * Loads the scripts through the bridge (SCRIPT LOAD: it rewrites them and answers their own
 * SHA1s), so every call of theirs is one EVALSHA that runs, never a NOSCRIPT then an EVAL.
 */
export async function loadScripts(stack: Stack, sources = DELIVERY_SCRIPTS): Promise<void> {
  for (const source of sources) {
    const res = await fetch(stack.bridge.url, {
      method: "POST",
      headers: { authorization: `Bearer ${BRIDGE_TOKEN}` },
      body: JSON.stringify(["SCRIPT", "LOAD", source]),
    });
    const reply = (await res.json()) as { result?: string };
    if (reply.result !== sha1(source)) {
      throw new Error(`SCRIPT LOAD through the bridge: ${res.status} ${JSON.stringify(reply)}`);
    }
  }
}

/** How many faults of each kind the bridge injected while `run` ran. */
export async function injectedDuring(stack: Stack, run: () => Promise<unknown>) {
  const before = { ...stack.bridge.faults.injected };
  await run();
  const after = stack.bridge.faults.injected;
  return {
    "drop-reply": after["drop-reply"] - before["drop-reply"],
    refuse: after.refuse - before.refuse,
    unavailable: after.unavailable - before.unavailable,
    delay: after.delay - before.delay,
  };
}

// Read in one atomic step, so a deliverer cannot move between the two reads: the group's pending
// count and whether the unit has a wake or a retry member.
const SCHEDULED_LUA = `
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])[1]
local wake = redis.call('ZSCORE', KEYS[2], ARGV[2])
local retry = redis.call('ZSCORE', KEYS[2], ARGV[3])
return {pending, wake and 1 or 0, retry and 1 or 0}
`;

export interface UnitState {
  subscription: string;
  pending: number;
  wake: boolean;
  retry: boolean;
}

/** The main unit of `channel`/`subscription` (group `group`): pending count and schedule. */
export async function unitState(
  stack: Stack,
  channel: string,
  subscription: string,
  group: string,
): Promise<UnitState> {
  const unit: Unit = { channel, subscription, kind: "main" };
  const [pending, wake, retry] = (await stack.redis.eval(
    SCHEDULED_LUA,
    2,
    stack.keys.channel(channel),
    stack.keys.due(),
    group,
    wakeMember(unit),
    retryMember(unit),
  )) as [number, number, number];
  return { subscription, pending, wake: wake === 1, retry: retry === 1 };
}

/**
 * The units that break the product's promise: entries pending with neither a wake nor a retry
 * member in {p}:due, so no pass would ever look at them again. Empty when nothing is stranded.
 */
export async function stranded(
  stack: Stack,
  channel: string,
  groups: Record<string, string>,
): Promise<UnitState[]> {
  const states = await Promise.all(
    Object.entries(groups).map(([name, group]) => unitState(stack, channel, name, group)),
  );
  return states.filter((s) => s.pending > 0 && !s.wake && !s.retry);
}

/** A predicate over requests that holds only for the `n`th (1-based) request matching `match`. */
export function nth(match: Match, n: number): Match {
  let seen = 0;
  return (commands) => match(commands) && ++seen === n;
}

/** The {p}:due members of `channel`'s units, e.g. ["retry:orders/billing"]. */
export async function scheduledOn(stack: Stack, channel: string): Promise<string[]> {
  const members = await stack.redis.zrange(stack.keys.due(), "0", "-1");
  return members.filter((m) => parseDueMember(m)?.unit.channel === channel);
}

/**
 * Counts the requests matching `match` from now on, injecting nothing (a rule that never fires;
 * add it before the rules that do, or the requests they take are not counted).
 */
export function watch(stack: Stack, match: Match): () => number {
  let count = 0;
  stack.bridge.faults.add({
    kind: "delay",
    delayMs: 0,
    match: (commands) => {
      if (match(commands)) count++;
      return false;
    },
  });
  return () => count;
}
