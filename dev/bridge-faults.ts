// Fault injection: the bridge fails on purpose, the ways a request to Upstash fails for real.
//
//   drop-reply   run the request, then close the connection without answering: the client sees
//                a network error after Redis executed it (and @upstash/redis sends it again)
//   refuse       close the connection before running anything
//   unavailable  answer 503 UNAVAILABLE without running anything (as when Redis is down)
//   delay        wait delayMs, then run the request as usual
//
// Rules are checked in order for each request; the first that fires applies. A rule fires when it
// matches (a list of command names, any command of the request; or a predicate), has times left,
// and a draw from a seeded PRNG falls under its rate: the same seed and requests give the same
// faults, so a failing test repeats.

import type { Command } from "./bridge-request.ts";

export type FaultKind = "drop-reply" | "refuse" | "unavailable" | "delay";
export const FAULT_KINDS: readonly FaultKind[] = ["drop-reply", "refuse", "unavailable", "delay"];

export interface FaultRule {
  kind: FaultKind;
  /** Command names (any case), matching when any command of the request has one; default: all. */
  match?: readonly string[] | ((commands: readonly Command[]) => boolean);
  /** Chance that a matching request gets the fault, 0..1. Default 1. */
  rate?: number;
  /** Applies at most this many times. Default: no limit. */
  times?: number;
  /** For `delay`: how long to wait before running, ms. */
  delayMs?: number;
}

export interface Faults {
  /** Adds a rule after the others; returns a function that removes it. */
  add(rule: FaultRule): () => void;
  /** Removes every rule (the counts stay). */
  clear(): void;
  /** How many times each kind was injected since the bridge started. */
  readonly injected: Readonly<Record<FaultKind, number>>;
}

/** The bridge's side: which fault, if any, this request gets. */
export interface FaultInjector extends Faults {
  pick(commands: readonly Command[]): FaultRule | undefined;
}

export const DEFAULT_FAULT_SEED = 0x5eed;

export function faultInjector(seed = DEFAULT_FAULT_SEED, initial: FaultRule[] = []): FaultInjector {
  const random = mulberry32(seed);
  const rules: { rule: FaultRule; used: number }[] = [];
  const injected: Record<FaultKind, number> = {
    "drop-reply": 0,
    refuse: 0,
    unavailable: 0,
    delay: 0,
  };
  const add = (rule: FaultRule) => {
    validate(rule);
    const entry = { rule, used: 0 };
    rules.push(entry);
    return () => {
      const at = rules.indexOf(entry);
      if (at !== -1) rules.splice(at, 1);
    };
  };
  for (const rule of initial) add(rule);

  return {
    add,
    clear() {
      rules.length = 0;
    },
    injected,
    pick(commands) {
      for (const entry of rules) {
        const { rule } = entry;
        if (rule.times !== undefined && entry.used >= rule.times) continue;
        if (!matches(rule, commands)) continue;
        // A rate of 1 draws nothing, so adding a sure rule does not shift the others' draws.
        const rate = rule.rate ?? 1;
        if (rate < 1 && random() >= rate) continue;
        entry.used++;
        injected[rule.kind]++;
        return rule;
      }
      return undefined;
    },
  };
}

function matches(rule: FaultRule, commands: readonly Command[]): boolean {
  const { match } = rule;
  if (match === undefined) return true;
  if (typeof match === "function") return match(commands);
  const names = new Set(match.map((name) => name.toLowerCase()));
  return commands.some((command) => names.has(command.name.toLowerCase()));
}

function validate(rule: FaultRule): void {
  const problem = (text: string) => new TypeError(`bridge fault ${describe(rule)}: ${text}`);
  if (!FAULT_KINDS.includes(rule.kind)) throw problem(`kind must be one of ${FAULT_KINDS}`);
  const { rate, times, delayMs } = rule;
  if (rate !== undefined && !(rate >= 0 && rate <= 1)) throw problem("rate must be 0..1");
  if (times !== undefined && !(Number.isInteger(times) && times >= 0)) {
    throw problem("times must be a whole number");
  }
  if (rule.kind === "delay" && !(delayMs !== undefined && delayMs >= 0 && delayMs < Infinity)) {
    throw problem("a delay needs delayMs >= 0");
  }
}

function describe(rule: FaultRule): string {
  return JSON.stringify({ ...rule, match: typeof rule.match === "function" ? "<fn>" : rule.match });
}

/** A small seeded PRNG (mulberry32): uniform in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}
