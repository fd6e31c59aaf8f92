// Dead letters as the API shows them: listing and purging a subscription's {p}:dlq:<ch>:<sub>.
// The entry id is the time of death; the fields are o (the original message id), t (type), d
// (data JSON), a (attempts made), e (last error). Parking and redriving them move entries of the
// subscription's group: shared/engine/dead-letters.ts.

import { stateField } from "./keys.ts";
import { asArray, asNumber, asOptionalString, type Db } from "./redis.ts";
import { idTime, readPage } from "./streams.ts";
import { storedTrace, traceSeed } from "./trace.ts";

export interface DeadLetter {
  id: string;
  type: string | null;
  /** The message data as JSON text. */
  data: string;
  publishedAt: string;
  attempts: number;
  lastError: string;
  deadAt: string;
  /** Its publish's trace context (streams.ts StoredMessage). */
  traceparent: string;
  tracestate?: string;
  /** The ordering key it was published with, when it had one. */
  orderingKey?: string;
}

/**
 * A page of dead letters, oldest first, after `after` (an entry id, exclusive); bounded in bytes
 * like a page of history (streams.ts readPage). With it, how many dead letters the bounds have
 * trimmed so far: `expired` for age, `dropped` for count.
 */
export async function listDeadLetters(
  db: Db,
  channel: string,
  name: string,
  page: { after?: string | undefined; limit: number },
  maxMessageBytes: number,
): Promise<{ messages: DeadLetter[]; next: string | null; expired: number; dropped: number }> {
  const key = db.keys.deadLetters(channel, name);
  const trimmed = [stateField(name, "deadLettersExpired"), stateField(name, "deadLettersDropped")];
  const [{ entries, more }, counts] = await Promise.all([
    readPage(db, key, page, maxMessageBytes),
    db.redis.hmget(db.keys.state(channel), ...trimmed),
  ]);
  const [expired, dropped] = asArray(counts).map((n) => Number(asOptionalString(n) ?? 0));
  const seed = traceSeed(channel);
  const messages = (entries ?? []).map(({ id, fields: stored }) => {
    const fields = stored ?? {};
    const original = fields.o ?? id;
    return {
      id: original,
      type: fields.t ?? null,
      data: fields.d ?? "null",
      publishedAt: new Date(idTime(original)).toISOString(),
      attempts: Number(fields.a ?? 0),
      lastError: fields.e ?? "",
      deadAt: new Date(idTime(id)).toISOString(),
      ...storedTrace(seed, original, fields.p, fields.s),
      ...(fields.k ? { orderingKey: fields.k } : {}),
    };
  });
  const next = more ? (entries?.at(-1)?.id ?? null) : null;
  return { messages, next, expired: expired ?? 0, dropped: dropped ?? 0 };
}

/** Deletes every dead letter of the subscription; returns how many there were. */
export async function purgeDeadLetters(db: Db, channel: string, name: string): Promise<number> {
  const key = db.keys.deadLetters(channel, name);
  const [length] = await db.redis.pipeline().xlen(key).del(key).exec<[unknown, unknown]>();
  return asNumber(length);
}
