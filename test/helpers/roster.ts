// "Another isolate" for the roster tests (shared/roster.ts): this process, publishing with the
// product's own publish (shared/streams.ts) and a Rosters of its own, against a stack's Redis.

import { loadConfig } from "../../shared/config.ts";
import { unmetered } from "../../shared/meter.ts";
import { type Db, getDb } from "../../shared/redis.ts";
import type { Rosters } from "../../shared/roster.ts";
import { publish } from "../../shared/streams.ts";
import { BRIDGE_TOKEN, type Stack } from "./stack.ts";

const configOf = (stack: Stack) =>
  loadConfig({
    UPSTASH_REDIS_REST_URL: stack.bridge.url,
    UPSTASH_REDIS_REST_TOKEN: BRIDGE_TOKEN,
    API_TOKEN: "unused",
    TRIM_MIN_INTERVAL_MS: "3600000",
  });

/** The product's clients for the stack's Redis, through its bridge. */
export const dbOf = (stack: Stack): Db => getDb(configOf(stack), unmetered());

/** A publish of one message (its data as JSON) through `isolate`'s roster copies, at `now`. */
export const publishThrough = (
  stack: Stack,
  db: Db,
  isolate: Rosters,
  channel: string,
  data: unknown,
  now: number,
) =>
  publish(db, channel, [{ data: JSON.stringify(data) }], {
    now,
    retention: configOf(stack).retention,
    rosters: isolate,
  });
