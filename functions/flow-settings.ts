// A subscription's flow key and its limits, from a create or a PATCH body: the rule the schema
// cannot state field by field. A key needs a rate, a parallelism or both; either needs a key.
// A PATCH changes the fields it names; `flowKey: null` removes the key with its limits.

import { InvalidInput } from "../shared/errors.ts";
import type { Flow } from "../shared/subscription.ts";

export interface FlowFields {
  flowKey?: string | null | undefined;
  flowRate?: number | null | undefined;
  flowParallelism?: number | null | undefined;
}

export const FLOW_FIELDS = ["flowKey", "flowRate", "flowParallelism"] as const;

/** The flow after `changes` to `before` (null on create); throws 400 naming the field. */
export function flowAfter(before: Flow | null, changes: FlowFields): Flow | null {
  const key = changes.flowKey === undefined ? (before?.key ?? null) : changes.flowKey;
  const kept = changes.flowKey === null ? null : before;
  const rate = changes.flowRate === undefined ? (kept?.rate ?? null) : changes.flowRate;
  const parallelism =
    changes.flowParallelism === undefined ? (kept?.parallelism ?? null) : changes.flowParallelism;
  if (key === null) {
    if (rate === null && parallelism === null) return null;
    const field = rate === null ? "flowParallelism" : "flowRate";
    throw new InvalidInput(`body.${field}: needs a flowKey to share it under`);
  }
  if (rate === null && parallelism === null) {
    throw new InvalidInput("body.flowKey: give flowRate, flowParallelism or both with it");
  }
  return { key, rate, parallelism };
}
