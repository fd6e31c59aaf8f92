// The bridge's limits and faults from the environment, for `npm run bridge` and `npm run dev`:
//
//   BRIDGE_MAX_REQUEST_BYTES          request body limit, bytes             default 10 MiB (Upstash)
//   BRIDGE_MAX_RECORD_BYTES           one key's size limit, bytes           default 100 MiB (Upstash)
//   BRIDGE_MAX_PENDING_PER_CONSUMER   XREADGROUP pending entries limit      default 1000 (Upstash)
//   BRIDGE_MAX_DATA_BYTES             database capacity (Redis maxmemory)   default: none
//   BRIDGE_FAULTS                     kind=rate[:delayMs],...  e.g. "drop-reply=0.02,refuse=0.01,
//                                     delay=0.05:200" (every request may get one)  default: none
//   BRIDGE_FAULT_SEED                 the faults' PRNG seed, an integer     default fixed
//
// A wrong value stops the start with an error naming the variable.

import type { BridgeOptions } from "./bridge.ts";
import { FAULT_KINDS, type FaultKind, type FaultRule } from "./bridge-faults.ts";

export type BridgeEnvOptions = Pick<
  BridgeOptions,
  | "maxRequestBytes"
  | "maxRecordBytes"
  | "maxPendingPerConsumer"
  | "maxDataBytes"
  | "faults"
  | "seed"
>;

export function bridgeOptionsFromEnv(env: Record<string, string | undefined>): BridgeEnvOptions {
  return {
    maxRequestBytes: positive(env, "BRIDGE_MAX_REQUEST_BYTES"),
    maxRecordBytes: positive(env, "BRIDGE_MAX_RECORD_BYTES"),
    maxPendingPerConsumer: positive(env, "BRIDGE_MAX_PENDING_PER_CONSUMER"),
    maxDataBytes: positive(env, "BRIDGE_MAX_DATA_BYTES"),
    faults: parseFaults(env.BRIDGE_FAULTS ?? ""),
    seed: integer(env, "BRIDGE_FAULT_SEED"),
  };
}

/** `drop-reply=0.02,delay=0.05:200` -> rules for every request, in that order. */
export function parseFaults(text: string): FaultRule[] {
  if (text.trim() === "") return [];
  return text.split(",").map((part) => {
    const match = /^\s*([a-z-]+)=([0-9.]+)(?::(\d+))?\s*$/.exec(part);
    const kind = match?.[1] as FaultKind | undefined;
    const rate = Number(match?.[2]);
    const delayMs = match?.[3] === undefined ? undefined : Number(match[3]);
    const fail = (why: string) =>
      new Error(
        `BRIDGE_FAULTS: "${part}" ${why}; expected kind=rate[:delayMs],... e.g. ${EXAMPLE}`,
      );
    if (!match || !kind) throw fail("is not kind=rate");
    if (!FAULT_KINDS.includes(kind)) throw fail(`has no kind ${kind} (${FAULT_KINDS.join(", ")})`);
    if (!(rate >= 0 && rate <= 1)) throw fail("has a rate outside 0..1");
    if ((kind === "delay") !== (delayMs !== undefined)) {
      throw fail("needs :delayMs for delay, and only for delay");
    }
    return delayMs === undefined ? { kind, rate } : { kind, rate, delayMs };
  });
}

const EXAMPLE = '"drop-reply=0.02,refuse=0.01,delay=0.05:200"';

function positive(env: Record<string, string | undefined>, name: string): number | undefined {
  const value = integer(env, name);
  if (value !== undefined && value <= 0) throw new Error(`${name} must be above 0, got ${value}`);
  return value;
}

function integer(env: Record<string, string | undefined>, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text.trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got "${text}"`);
  return value;
}
