// The bridge's one connection to Redis, and running calls on it.
//
// Replies are read as bytes (`callBuffer`) in RESP2, the shapes Upstash returns. Two kinds of
// failure are kept apart: Redis answering with an error reply (the client's mistake: a result,
// passed on with Redis' own text, which @upstash/redis reads, e.g. NOSCRIPT) and Redis not
// answering at all (`Unavailable`: the bridge says 503 at once). Commands are never queued while
// the connection is down, so a request fails fast instead of hanging; ioredis keeps reconnecting
// in the background and the bridge recovers by itself when Redis is back.
//
// One connection serves every request, in arrival order, so a write is visible to the next read
// (read-your-writes for free). MULTI/EXEC is safe on it too: ioredis writes the whole transaction
// at once, so no other request's command can land inside it. A blocking command (XREADGROUP
// BLOCK) holds up every other request while it waits.

import { Redis, ReplyError } from "ioredis";
import type { Command } from "./bridge-request.ts";

/** One command's outcome: Redis' reply, or its error reply's message. */
export type Outcome = { result: unknown } | { error: string };

export class Unavailable extends Error {
  override name = "Unavailable";
}

export interface RedisConnection {
  run(command: Command): Promise<Outcome>;
  runPipeline(commands: Command[]): Promise<Outcome[]>;
  /** Per-command outcomes, or one error when Redis discarded the whole transaction. */
  runMultiExec(commands: Command[]): Promise<Outcome[] | { error: string }>;
  close(): void;
}

const RECONNECT_MAX_DELAY_MS = 1_000;

/** Connects, or throws naming the URL when Redis is unreachable now: a wrong REDIS_URL shows. */
export async function connect(redisUrl: string): Promise<RedisConnection> {
  const redis = new Redis(redisUrl, {
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (attempt) => Math.min(attempt * 50, RECONNECT_MAX_DELAY_MS),
  });
  // Why Redis is unreachable (ECONNREFUSED...), more telling than "stream isn't writeable".
  let lastError: string | undefined;
  redis.on("error", (error: Error) => {
    lastError = error.message;
  });
  redis.on("close", () => {
    lastError ??= "connection closed";
  });
  redis.on("ready", () => {
    lastError = undefined;
  });
  try {
    await redis.connect();
  } catch (error) {
    redis.disconnect();
    throw new Error(`redis is unreachable at ${redacted(redisUrl)}: ${lastError ?? error}`);
  }

  const unavailable = (error: unknown) =>
    new Unavailable(`UNAVAILABLE redis is unreachable: ${lastError ?? (error as Error).message}`);
  const settle = ([error, result]: [Error | null, unknown]): Outcome => {
    if (!error) return { result };
    if (error instanceof ReplyError) return { error: error.message };
    throw unavailable(error);
  };

  return {
    async run({ name, args }) {
      try {
        return { result: await redis.callBuffer(wire(name), ...args) };
      } catch (error) {
        return settle([error as Error, undefined]);
      }
    },
    async runPipeline(commands) {
      const pipeline = redis.pipeline();
      for (const { name, args } of commands) pipeline.callBuffer(wire(name), ...args);
      let replies: [Error | null, unknown][] | null;
      try {
        replies = await pipeline.exec();
      } catch (error) {
        throw unavailable(error);
      }
      if (!replies) throw unavailable(new Error("no replies"));
      return replies.map(settle);
    },
    async runMultiExec(commands) {
      const transaction = redis.multi();
      for (const { name, args } of commands) transaction.callBuffer(wire(name), ...args);
      let replies: [Error | null, unknown][] | null;
      try {
        replies = await transaction.exec();
      } catch (error) {
        if (!(error instanceof ReplyError)) throw unavailable(error);
        // EXECABORT alone does not say what was wrong; the queued command's error does.
        const { message, previousErrors } = error as Error & { previousErrors?: Error[] };
        const cause = previousErrors?.[0]?.message;
        return { error: cause ? `${message} ${cause}` : message };
      }
      // EXEC answers nil only after a WATCH, which the bridge never sends.
      if (!replies) throw unavailable(new Error("EXEC returned nil"));
      return replies.map(settle);
    },
    close() {
      redis.disconnect();
    },
  };
}

/** Upstash's capacity as Redis' maxmemory: writes refused (OOM), never data evicted. */
export async function setCapacity(redis: RedisConnection, bytes: number): Promise<void> {
  for (const [name, value] of [
    ["maxmemory", String(bytes)],
    ["maxmemory-policy", "noeviction"],
  ] as const) {
    const outcome = await redis.run({ name: "CONFIG", args: ["SET", name, value] });
    if ("error" in outcome) throw new Error(`could not set Redis' ${name}: ${outcome.error}`);
  }
}

/**
 * The name ioredis sends. ioredis reshapes some replies and arguments by lowercase command name
 * (HGETALL into an object, an HSET Buffer argument into field/value pairs); Redis ignores case,
 * so an uppercase name gets Redis' reply untouched.
 */
function wire(name: string): string {
  return name.toUpperCase();
}

/** The URL without its password, fit for a log line. */
export function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparseable REDIS_URL>";
  }
}
