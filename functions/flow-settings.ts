// A subscription's flow key and its limits, from a create or a PATCH body: a key needs a rate, a
// parallelism or both; either needs a key. A create's body alone decides (400, as the document
// says); a PATCH changes the fields it names, `flowKey: null` removing the key with its limits,
// and what it leaves depends on what is stored (409 flow_incomplete).

import { Conflict, InvalidInput } from "../shared/errors.ts";
import type { Flow } from "../shared/subscription.ts";

export interface FlowFields {
  flowKey?: string | null | undefined;
  flowRate?: number | null | undefined;
  flowParallelism?: number | null | undefined;
}

export const FLOW_FIELDS = ["flowKey", "flowRate", "flowParallelism"] as const;

/** The flow of a create's body; throws 400 naming the field. */
export const flowOfCreate = (body: FlowFields): Flow | null =>
  flowAfter(null, body, (field, why) => new InvalidInput(`body.${field}: ${why}`));

/** The flow after a PATCH's `changes` to `before`; throws 409 flow_incomplete naming the field. */
export const flowOfPatch = (before: Flow | null, changes: FlowFields): Flow | null =>
  flowAfter(before, changes, (field, why) => new Conflict(`${field}: ${why}`, "flow_incomplete"));

function flowAfter(
  before: Flow | null,
  changes: FlowFields,
  refuse: (field: string, why: string) => Error,
): Flow | null {
  const key = changes.flowKey === undefined ? (before?.key ?? null) : changes.flowKey;
  const kept = changes.flowKey === null ? null : before;
  const rate = changes.flowRate === undefined ? (kept?.rate ?? null) : changes.flowRate;
  const parallelism =
    changes.flowParallelism === undefined ? (kept?.parallelism ?? null) : changes.flowParallelism;
  if (key === null) {
    if (rate === null && parallelism === null) return null;
    throw refuse(
      rate === null ? "flowParallelism" : "flowRate",
      "needs a flowKey to share it under",
    );
  }
  if (rate === null && parallelism === null) {
    throw refuse("flowKey", "give flowRate, flowParallelism or both with it");
  }
  return { key, rate, parallelism };
}
