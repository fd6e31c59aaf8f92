// Builds the Worker once for the whole run, exactly as `wrangler deploy` would bundle it; each
// test file then starts that bundle in its own workerd (test/helpers/stack.ts).

import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// STREAMHOOK_BUILD_DIR lets two runs on one checkout (a test run beside a benchmark) keep apart.
export const WORKER_BUILD_DIR =
  process.env.STREAMHOOK_BUILD_DIR ?? join(import.meta.dirname, "..", ".build", "worker");

const ROOT = join(import.meta.dirname, "..");

/**
 * wrangler.toml without its delivery queue, for stacks that run without one (the default in
 * tests: delivery happens in the kicks and passes a test runs, and nowhere else). Written beside
 * the build, from wrangler.toml itself, so the two cannot drift apart.
 */
export const NO_QUEUE_CONFIG = `${WORKER_BUILD_DIR}.no-queue.toml`;

function writeNoQueueConfig(): void {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  // Every [[queues.*]] table, up to the next table or the end.
  const withoutQueues = toml.replace(/^\[\[queues\.[^\]]+\]\][\s\S]*?(?=^\[|(?![\s\S]))/gm, "");
  const main = `main = ${JSON.stringify(join(ROOT, "index.ts"))}`;
  writeFileSync(NO_QUEUE_CONFIG, withoutQueues.replace(/^main = .*$/m, main));
}

export default function setup(): void {
  rmSync(WORKER_BUILD_DIR, { recursive: true, force: true });
  const wrangler = join(
    import.meta.dirname,
    "..",
    "node_modules",
    "wrangler",
    "bin",
    "wrangler.js",
  );
  // Run with this process' Node (24): wrangler refuses the machine's Node 20.
  execFileSync(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", WORKER_BUILD_DIR], {
    cwd: join(import.meta.dirname, ".."),
    stdio: ["ignore", "ignore", "inherit"],
    env: {
      ...process.env,
      WRANGLER_SEND_METRICS: "false",
      WRANGLER_HIDE_BANNER: "true",
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
    },
  });
  writeNoQueueConfig();
}
