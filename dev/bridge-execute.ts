// Running a request's commands the way Upstash would: scripts translated (bridge-scripts.ts), each
// checked command preceded by its probes (bridge-limits.ts), Redis' OOM text made Upstash's.
//
// Order is the request's. A pipeline is cut into segments at each checked command: the segment
// before it and its probes go to Redis in one round trip, then the command opens the next segment
// or, refused, gets its error entry while the rest run on (an Upstash pipeline does not stop at a
// failed command, and is not atomic). Other requests may interleave between segments, as they
// may on Upstash. A transaction cannot be cut: all its probes run just before MULTI, and each
// probe also counts what earlier commands of the same transaction add; a refused command is left
// out of MULTI and gets its error entry in place.

import { asUpstashError, type Limits, type Probe, probesFor, refusal } from "./bridge-limits.ts";
import type { Outcome, RedisConnection } from "./bridge-redis.ts";
import type { Command } from "./bridge-request.ts";
import type { Scripts, Translated } from "./bridge-scripts.ts";

export interface Guard {
  redis: RedisConnection;
  limits: Limits;
  scripts: Scripts;
}

/** Each command's outcome, and how many commands Redis ran for the client (probes excluded). */
export type Executed = { outcomes: Outcome[]; ran: number };

/** A single command or a pipeline, in order, each command checked right before it runs. */
export async function runInOrder(commands: Command[], guard: Guard): Promise<Executed> {
  const outcomes: Outcome[] = [];
  let segment: Translated[] = [];
  let ran = 0;
  const flush = async (probes: Probe[]) => {
    const sent = [...segment.map((t) => t.command), ...probes.map((p) => p.command)];
    const replies = await send(guard.redis, sent);
    outcomes.push(...segment.map((t, i) => settle(t, replies[i]!)));
    ran += segment.length;
    segment = [];
    return replies.slice(sent.length - probes.length);
  };
  for (const command of commands) {
    const translated = guard.scripts.translate(command);
    const probes = probesFor(translated.command);
    if (probes.length > 0) {
      const replies = await flush(probes);
      const refused = firstRefusal(probes, replies, guard.limits);
      if (refused) {
        outcomes.push({ error: refused });
        continue;
      }
    }
    segment.push(translated);
  }
  if (segment.length > 0) await flush([]);
  return { outcomes, ran };
}

/** A transaction: per-command outcomes, or one error when Redis discarded it as a whole. */
export async function runTransaction(
  commands: Command[],
  guard: Guard,
): Promise<Executed | { error: string }> {
  const translated = commands.map((command) => guard.scripts.translate(command));
  const probes = translated.map((t) => probesFor(t.command));
  const replies = await send(
    guard.redis,
    probes.flat().map((p) => p.command),
  );
  // What the transaction's earlier commands add, per key (record) or per consumer (pending).
  const earlier = new Map<string, number>();
  let at = 0;
  const refusals = probes.map((own) => {
    const mine = replies.slice(at, at + own.length);
    at += own.length;
    const refused = firstRefusal(own, mine, guard.limits, earlier);
    if (!refused) for (const probe of own) addGrowth(earlier, probe);
    return refused;
  });
  const accepted = translated.filter((_, i) => !refusals[i]);
  const executed =
    accepted.length > 0 ? await guard.redis.runMultiExec(accepted.map((t) => t.command)) : [];
  if (!Array.isArray(executed)) return { error: asUpstashError(executed.error) };
  let next = 0;
  const outcomes = translated.map((t, i): Outcome => {
    const refused = refusals[i];
    return refused ? { error: refused } : settle(t, executed[next++]!);
  });
  return { outcomes, ran: accepted.length };
}

function firstRefusal(
  probes: Probe[],
  replies: Outcome[],
  limits: Limits,
  earlier?: Map<string, number>,
): string | undefined {
  for (const [i, probe] of probes.entries()) {
    const refused = refusal(probe, replies[i]!, limits, earlier?.get(identity(probe)));
    if (refused) return refused;
  }
  return undefined;
}

function identity(probe: Probe): string {
  const hex = (arg: string | Buffer) => Buffer.from(arg).toString("hex");
  return probe.kind === "record"
    ? `record ${hex(probe.key)}`
    : `pending ${hex(probe.key)} ${hex(probe.group)} ${hex(probe.consumer)}`;
}

/** Records what a command that will run adds to its key (bytes) or its consumer (entries). */
function addGrowth(earlier: Map<string, number>, probe: Probe): void {
  const growth = probe.kind === "record" ? probe.adds : probe.requested;
  earlier.set(identity(probe), (earlier.get(identity(probe)) ?? 0) + growth);
}

/** One command alone as itself (a pipeline of one is the same on the wire, but kept plain). */
async function send(redis: RedisConnection, commands: Command[]): Promise<Outcome[]> {
  if (commands.length === 0) return [];
  if (commands.length === 1) return [await redis.run(commands[0]!)];
  return redis.runPipeline(commands);
}

function settle(translated: Translated, outcome: Outcome): Outcome {
  if ("error" in outcome) return { error: asUpstashError(outcome.error) };
  return translated.reply ? { result: translated.reply(outcome.result) } : outcome;
}
