// Redrive for pull subscriptions: dead letters put back become pullable again.
//
// Redrive moves them into the subscription's redrive stream (lua/redrive.ts, as for a push
// subscription), read with the subscription's group, so they reach only this subscription and
// start again at attempt 1. For a pull subscription its entry ids are "0-<n>" (numbered by lua/redrive.ts), which
// no publish makes (a publish's ids are its time), so an id alone says which stream an ack, nack
// or extend is for; a pulled redriven message carries its original id as `redrivenFrom`.
//
// Pulls must not pay for an empty redrive stream, so redrive also sets the subscription's
// `<sub>#redrive` marker, read with its settings (the same HMGET); while it is set, pulls serve
// the redrive stream first (shared/pull.ts), and the first that finds it empty removes it
// (lua/redrive-end.ts). A Worker isolate holds the settings for up to 5 s, so a redrive through
// another isolate is pulled from within that.

import { pausedField, redriveField } from "./keys.ts";
import { REDRIVE_END_LUA } from "./lua/redrive-end.ts";
import { asArray, asNumber, asOptionalString, type Db, runScript } from "./redis.ts";
import { parseSubscription, type Subscription } from "./subscription.ts";

/** A subscription's settings with its redrive marker (1 HMGET); null when there is none. */
export async function loadPullSettings(
  db: Db,
  channel: string,
  name: string,
): Promise<{ sub: Subscription; redriving: boolean } | null> {
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

/** Removes the redrive marker if the redrive stream is empty; true if it did (or it was gone). */
export async function endRedrive(db: Db, sub: Subscription): Promise<boolean> {
  const keys = [db.keys.redrive(sub.channel, sub.name), db.keys.subscriptions(sub.channel)];
  return asNumber(await runScript(db.redis, REDRIVE_END_LUA, keys, [redriveField(sub.name)])) === 1;
}
