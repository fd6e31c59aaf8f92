// What a Worker isolate keeps per pull subscription, between pulls.
//
// The subscription's settings (its group, maxAttempts, types) are kept per isolate for up to
// SETTINGS_TTL_MS, so that a pull costs only its own commands and an ack its one XACK. That is
// safe because nothing a stale copy could do outlives a few seconds or touches another
// subscription: a delete is seen at once (its group is gone: NOGROUP, and the settings are loaded
// again; a new subscription of the same name has a group of its own), a PATCH or pause through
// this isolate at once, through another within SETTINGS_TTL_MS.
//
// Beside them, the isolate keeps when one of its pulls last looked for leases that ran out: a
// pull looks only if none did in the last PULL_LOOK_EVERY_MS (1 s; and the next one looks after
// a nack here), which saves the others a round trip and an XPENDING that scans the group's
// pending list. A lease that runs out is so taken over within about a second while consumers
// pull, rather than by the very next pull.

import type { Context } from "hono";
import { Conflict, subscriptionNotFound } from "../shared/errors.ts";
import { pausedField, redriveField } from "../shared/keys.ts";
import { asArray, asOptionalString, type Db, isReplyError } from "../shared/redis.ts";
import { parseSubscription, type Subscription } from "../shared/subscription.ts";
import type { AppEnv } from "./types.ts";

const SETTINGS_TTL_MS = 5000;

/** A subscription's settings as this isolate holds them. */
export interface Held {
  sub: Subscription;
  at: number;
  /** When a pull through this isolate last looked for leases that ran out; 0: never. */
  lookedAt: number;
  /** The largest message data its pulls read lately (bytes, see `sizeNext`); 0: none yet. */
  largestSeen: number;
  /** It has its redrive marker: redriven messages may wait (functions/pull.ts). */
  redriving: boolean;
}

// Per isolate (module scope), keyed by database: a Worker's clients are made per request.
const cache = new Map<string, Map<string, Held>>();

/** A subscription's settings with its redrive marker (1 HMGET); null when there is none. */
async function loadPullSettings(db: Db, channel: string, name: string) {
  const fields = [name, pausedField(name), redriveField(name)];
  const [json, paused, redriving] = asArray(
    await db.redis.hmget(db.keys.subscriptions(channel), ...fields),
  );
  const text = asOptionalString(json);
  if (text === null) return null;
  return {
    sub: parseSubscription(channel, name, text, paused != null),
    redriving: redriving != null,
  };
}

async function settings(db: Db, channel: string, name: string, fresh: boolean): Promise<Held> {
  const byName = cache.get(db.keys.channels()) ?? new Map<string, Held>();
  cache.set(db.keys.channels(), byName);
  const key = `${channel}/${name}`;
  const held = byName.get(key);
  if (!fresh && held && Date.now() - held.at < SETTINGS_TTL_MS) return held;
  const loaded = await loadPullSettings(db, channel, name);
  if (!loaded) {
    byName.delete(key);
    throw subscriptionNotFound(channel, name);
  }
  const { sub, redriving } = loaded;
  if (sub.mode !== "pull") {
    throw new Conflict(
      `"${name}" is a push subscription: it is delivered to its url`,
      "not_pull_subscription",
    );
  }
  const current: Held = {
    sub,
    at: Date.now(),
    lookedAt: held?.lookedAt ?? 0,
    largestSeen: held?.largestSeen ?? 0,
    redriving,
  };
  byName.set(key, current);
  return current;
}

/** Forgets this isolate's copy of a subscription's settings (after a PATCH, DELETE or redrive). */
export function forgetSettings(db: Db, channel: string, name: string) {
  cache.get(db.keys.channels())?.delete(`${channel}/${name}`);
}

/** Runs `use` with the settings; once more with fresh ones when the group is gone (NOGROUP). */
export async function withSettings<T>(c: Context<AppEnv>, use: (held: Held) => Promise<T>) {
  const { channel, name } = c.req.param() as { channel: string; name: string };
  try {
    return await use(await settings(c.var.db, channel, name, false));
  } catch (error) {
    if (!isReplyError(error, "NOGROUP")) throw error;
    return use(await settings(c.var.db, channel, name, true));
  }
}

/**
 * Remembers the largest message a pull read, to size the next: a pull reads as many as fit
 * PULL_REPLY_BYTES if each were that large (lua/take.ts enforces the bytes whatever they are).
 * Halved when a pull reads only smaller ones, so one large message does not keep pulls small.
 */
export function sizeNext(held: Held, largest: number) {
  if (largest > 0) held.largestSeen = Math.max(largest, Math.floor(held.largestSeen / 2));
}

/** Whether this pull looks for leases that ran out (see the header); if so, the next need not. */
export function lookNow(held: Held, now: number, everyMs: number): boolean {
  if (held.lookedAt > 0 && now - held.lookedAt < everyMs) return false;
  held.lookedAt = now;
  return true;
}
