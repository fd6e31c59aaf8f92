// `npm run listen`: the original design's `listen_channel`, over HTTP. Pulls a pull subscription,
// appends each message to --out as one JSON line, fsyncs, then acks.
//
//   npm run listen -- --channel orders --subscription billing --out messages.jsonl
//                     [--url http://127.0.0.1:8787] [--token $API_TOKEN] [--consumer listen]
//                     [--max 100] [--visibility-ms 30000] [--wait-ms 20000]
//
// No message is lost and none is written twice, whenever it stops:
// - write + fsync before ack: a message is acked only once it is on disk. Killed before the ack,
//   it is handed out again when its visibility timeout runs out;
// - on start the file's ids are read back, so a message written but not acked before a crash is
//   acked again and skipped, not written a second time. A last line cut short by a crash is
//   dropped (it was never acked, so it comes again);
// - Ctrl-C (SIGINT) or SIGTERM stops the pull under way (what it took comes back after its
//   visibility timeout) but never a write and its ack: those finish, then it exits 0.
// It talks to the API through the typed client (client/, the @streamhook/client package, imported
// from its source), which retries a 429 or 503 after its Retry-After, and never sends a pull again
// on a lost answer (what that pull took comes back after its visibility timeout).

import { open, readFile, truncate } from "node:fs/promises";
import { createStreamhookClient, type PulledMessage } from "../client/index.ts";
import { commandLine, integerOption, parseOptions, UsageError } from "./cli.ts";

const USAGE = `usage: npm run listen -- --channel <channel> --subscription <name> --out <file.jsonl>
                          [options]

Pulls a pull subscription: appends each message to <file.jsonl> as one JSON line, fsyncs, then
acks. Ctrl-C stops it; nothing is lost or written twice, whenever it stops.

  --channel <channel>       the channel (required)
  --subscription <name>     the pull subscription (required)
  --out <file.jsonl>        where messages go (required); its ids are read back on start
  --url <url>               streamhook's base URL (default $STREAMHOOK_URL or
                            http://127.0.0.1:8787)
  --token <token>           API token (default $API_TOKEN or dev-api-token)
  --consumer <name>         consumer name; run several with different names to share the work
                            (default listen)
  --max <n>                 messages per pull (default 100)
  --visibility-ms <ms>      how long a pulled message stays leased to this consumer (default 30000)
  --wait-ms <ms>            how long a pull waits for a message (default 20000)
  -h, --help                print this and exit`;

/** The ids already in `path`, dropping a last line a crash cut short. */
async function writtenIds(path: string): Promise<Set<string>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Set();
    throw error;
  }
  const complete = text.endsWith("\n") ? text : text.slice(0, text.lastIndexOf("\n") + 1);
  if (complete.length !== text.length) await truncate(path, Buffer.byteLength(complete));
  const ids = new Set<string>();
  for (const line of complete.split("\n")) {
    if (line !== "") ids.add((JSON.parse(line) as { id: string }).id);
  }
  return ids;
}

async function main() {
  const values = commandLine("listen", USAGE, (argv) => {
    const parsed = parseOptions(argv, {
      channel: { type: "string" },
      subscription: { type: "string" },
      out: { type: "string" },
      url: { type: "string", default: process.env.STREAMHOOK_URL ?? "http://127.0.0.1:8787" },
      token: { type: "string", default: process.env.API_TOKEN ?? "dev-api-token" },
      consumer: { type: "string", default: "listen" },
      max: { type: "string", default: "100" },
      "visibility-ms": { type: "string", default: "30000" },
      "wait-ms": { type: "string", default: "20000" },
    });
    for (const flag of ["channel", "subscription", "out"] as const) {
      if (!parsed[flag]) throw new UsageError(`--${flag} is required`);
    }
    // Only their form: the API answers what is out of its range.
    integerOption("max", parsed.max, 1, Number.MAX_SAFE_INTEGER);
    integerOption("visibility-ms", parsed["visibility-ms"], 0, Number.MAX_SAFE_INTEGER);
    integerOption("wait-ms", parsed["wait-ms"], 0, Number.MAX_SAFE_INTEGER);
    return parsed as typeof parsed & { channel: string; subscription: string; out: string };
  });
  const { channel, subscription, out } = values;
  const streamhook = createStreamhookClient({ baseUrl: values.url, token: values.token });

  const written = await writtenIds(out);
  const file = await open(out, "a");
  const stopping = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => stopping.abort());
  }
  // Test hook: exit hard after this many writes, before their ack (a crash at the worst moment).
  const crashAfter = Number(process.env.LISTEN_CRASH_AFTER_WRITES ?? "0");
  let writes = 0;
  console.error(`listening to ${channel}/${subscription} into ${out} (${written.size} already)`);

  while (!stopping.signal.aborted) {
    let messages: PulledMessage[];
    try {
      messages = await streamhook.subscriptions.pull(channel, subscription, {
        max: Number(values.max),
        visibilityTimeoutMs: Number(values["visibility-ms"]),
        waitMs: Number(values["wait-ms"]),
        consumer: values.consumer,
        signal: stopping.signal,
      });
    } catch (error) {
      if (stopping.signal.aborted) break;
      console.error(String(error));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      continue;
    }
    if (messages.length === 0) continue;
    const fresh = messages.filter((m) => !written.has(m.id));
    if (fresh.length > 0) {
      await file.appendFile(fresh.map((m) => `${JSON.stringify(m)}\n`).join(""));
      await file.sync();
      for (const m of fresh) written.add(m.id);
      for (const m of fresh) {
        // The publish's W3C traceparent, to find the message in its trace ("-": stored before).
        console.log(`${m.id} ${m.type ?? "-"} ${m.traceparent ?? "-"} ${JSON.stringify(m.data)}`);
      }
    }
    if (crashAfter > 0 && ++writes >= crashAfter) process.exit(137);
    // Not aborted by a stop: what is on disk gets its ack.
    await streamhook.subscriptions.ack(
      channel,
      subscription,
      messages.map((m) => m.id),
    );
  }
  await file.close();
  console.error("stopped");
}

await main();
