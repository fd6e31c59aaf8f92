// Every shell example of the docs (```sh, ```bash and ```shell blocks of README.md and docs/*.md)
// runs against `npm run dev`, as a reader would run it: the stack is started the README's way
// (dev/stack.ts, on free ports and a throwaway data directory, with its default API token), then
// each page's blocks run in order in one bash with `set -euo pipefail`, in a scratch directory,
// with BASE and TOKEN set to the stack's (as the walk-through's first block exports them) and
// HOOK_PORT to a free port. A block must succeed (curl fails on a 4xx or 5xx here); a block
// followed at once by another fenced block (its output, as shown) must print lines of that shape
// (test/helpers/output-shape.ts).
//
// The commands that do not end by themselves, or cannot run inside a test, are handled by an
// `npm` shell function the blocks run through (LONG_RUNNING), and the blocks that cannot run here
// at all are listed in UNRUNNABLE, with the reason; the test fails while that list is not exact.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CONFIG_VARIABLES } from "../shared/config.ts";
import { docPages, type Fence, fences, ROOT, readPage } from "./helpers/markdown.ts";
import { outputMismatch } from "./helpers/output-shape.ts";
import { freePort } from "./helpers/redis-server.ts";

/** Blocks that are not run, by `<page>: <first line>`, and why. Keep it short and exact. */
const UNRUNNABLE: Record<string, string> = {
  "docs/operations.md: npx wrangler login":
    "logs wrangler in to a Cloudflare account and sets the deployment's secrets there",
};

/** How the `npm` function runs each command that would not end, or not belong, in a test. */
const LONG_RUNNING = {
  "npm run dev": "already started by this file, as in its own terminal: checks it answers",
  "npm test": "the suite this file belongs to: not run again from inside it",
  "npm run receiver": "started in the background until it listens; killed when the page ends",
  "npm run listen": "started in the background until it listens; killed when the page ends",
  "npm run bench": "takes minutes: its command line is checked (bench/options.ts), --help run",
};

// curl exits 0 on a 4xx or 5xx answer: here it fails the block, printing the answer's body.
const NPM_FUNCTION = `
curl() { command curl --fail-with-body "$@"; }
__bg=()
npm() {
  if [ "$1" = test ]; then return 0; fi
  if [ "$1" != run ]; then command npm "$@"; return; fi
  local name=$2; shift 2; if [ "\${1:-}" = -- ]; then shift; fi
  case "$name" in
    dev) command curl -sf "$BASE/health" >/dev/null ;;
    receiver|listen)
      node "$ROOT/dev/$name.ts" "$@" >"$name.log" 2>&1 & __bg+=($!)
      until grep -q listening "$name.log"; do
        kill -0 "\${__bg[-1]}" 2>/dev/null || { cat "$name.log" >&2; return 1; }; sleep 0.1
      done ;;
    bench)
      if [[ " $* " == *" --help "* ]]; then node "$ROOT/bench/run.ts" "$@"; return; fi
      node --input-type=module -e "import { parseBenchArgs } from '$ROOT/bench/options.ts';
        parseBenchArgs(process.argv.slice(1))" -- "$@" ;;
    *) command npm run "$name" -- "$@" ;;
  esac
}
`;

// Every background command must still be running when its page ends (it did not die on the way).
const EPILOGUE = `
for pid in "\${__bg[@]}"; do kill -0 "$pid" 2>/dev/null || { echo "a background command exited" >&2; exit 1; }; done
`;

const SHELL = new Set(["sh", "bash", "shell"]);
const reachesCloudflare = /wrangler (login|deploy|secret|queues create)/;
/** A page's run ends here, before the test's own timeout, so no loop outlives a failed run. */
const PAGE_TIMEOUT_MS = 45_000;
const MARK = "\u001eblock ";

interface Example {
  page: string;
  block: Fence;
  output?: Fence;
}

function examples(page: string): Example[] {
  const all = fences(readPage(page));
  const out: Example[] = [];
  all.forEach((block, i) => {
    if (!SHELL.has(block.lang)) return;
    const next = all[i + 1];
    const output = next?.followsFence && !SHELL.has(next.lang) ? next : undefined;
    out.push({ page, block, output });
  });
  return out;
}

const keyOf = ({ page, block }: Example) => `${page}: ${block.body.split("\n", 1)[0]?.trim()}`;
const pages = docPages();
const all = pages.flatMap(examples);

/** This process' environment without what a reader's shell would not have set for the stack. */
function cleanEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  const drop = new Set<string>([...CONFIG_VARIABLES, "BASE", "TOKEN", "SECRET", "HOOK_PORT"]);
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !drop.has(name)) env[name] = value;
  }
  env.PATH = `${join(ROOT, "node_modules", ".bin")}:${env.PATH ?? ""}`;
  return env;
}

let dev: ChildProcess;
let devOutput = "";
let scratch: string;
const pageEnv: Record<string, string> = {};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "docs-examples-"));
  const port = await freePort();
  dev = spawn(process.execPath, [join(ROOT, "dev", "stack.ts")], {
    cwd: ROOT,
    env: {
      ...cleanEnv(),
      WRANGLER_SEND_METRICS: "false",
      PORT: String(port),
      REDIS_PORT: String(await freePort()),
      BRIDGE_PORT: String(await freePort()),
      REDIS_DIR: join(scratch, "redis"),
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // its own process group: the kill below reaches wrangler and workerd too
  });
  for (const stream of [dev.stdout!, dev.stderr!]) {
    stream.on("data", (chunk: Buffer) => {
      devOutput += chunk.toString();
    });
  }
  const deadline = Date.now() + 55_000;
  while (!devOutput.includes("[streamhook] ready: ")) {
    if (dev.exitCode !== null || Date.now() > deadline) {
      throw new Error(`npm run dev did not get ready:\n${devOutput}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  Object.assign(pageEnv, cleanEnv(), {
    ROOT,
    BASE: `http://127.0.0.1:${port}`,
    TOKEN: "dev-api-token", // npm run dev's default, which the stack above keeps
    HOOK_PORT: String(await freePort()),
  });
}, 60_000);

afterAll(async () => {
  if (dev?.pid && dev.exitCode === null) {
    const exited = new Promise((resolve) => dev.once("exit", resolve));
    process.kill(-dev.pid, "SIGTERM");
    await exited;
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** Runs a page's runnable blocks in one bash; returns each block's stdout, and how it ended. */
async function runPage(page: string, blocks: Example[]) {
  const cwd = join(scratch, page.replace(/\W/g, "-"));
  await rm(cwd, { recursive: true, force: true });
  await mkdir(cwd, { recursive: true });
  const script = [
    "set -euo pipefail",
    NPM_FUNCTION,
    ...blocks.flatMap((example, i) => [`printf '\\n${MARK}%d\\n' ${i}`, example.block.body]),
    EPILOGUE,
  ].join("\n");
  const bash = spawn("bash", ["-c", script], {
    cwd,
    env: pageEnv,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // the background commands stay in its process group, killed below
  });
  let stdout = "";
  let stderr = "";
  bash.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  bash.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => process.kill(-bash.pid!, "SIGKILL"), PAGE_TIMEOUT_MS);
  const code = await new Promise<number | null>((resolve) => bash.once("close", resolve));
  clearTimeout(timer);
  try {
    process.kill(-bash.pid!, "SIGTERM");
  } catch {
    // nothing was left running
  }
  const outputs = stdout.split(MARK).slice(1);
  return { code, stderr, outputs: outputs.map((o) => o.replace(/^\d+\n/, "")) };
}

describe("the docs' shell examples", () => {
  it("skip exactly the blocks listed as unrunnable", () => {
    expect(all.map(keyOf).filter((key) => key in UNRUNNABLE)).toEqual(Object.keys(UNRUNNABLE));
    // A deploy step nobody listed is not run (it would reach Cloudflare), and fails here instead.
    const unlisted = all.filter(
      (e) => reachesCloudflare.test(e.block.body) && !(keyOf(e) in UNRUNNABLE),
    );
    expect(unlisted.map(keyOf)).toEqual([]);
  });

  it("go through the npm function only for the commands it knows", () => {
    const commands = all.flatMap((e) => e.block.body.match(/^\s*npm (?:run \S+|test)/gm) ?? []);
    for (const command of commands) expect(Object.keys(LONG_RUNNING)).toContain(command.trim());
  });

  const runnable = pages
    .map((page) => ({
      page,
      blocks: examples(page).filter(
        (e) => !(keyOf(e) in UNRUNNABLE) && !reachesCloudflare.test(e.block.body),
      ),
    }))
    .filter(({ blocks }) => blocks.length > 0);

  it.each(runnable)(
    "of $page run, in order, and print what they show",
    async ({ page, blocks }) => {
      const { code, stderr, outputs } = await runPage(page, blocks);
      const failed = blocks[outputs.length - 1];
      expect(
        code,
        `${page}:${failed?.block.line} failed (exit ${code}):\n${outputs.at(-1)}\n${stderr}`,
      ).toBe(0);
      blocks.forEach(({ block, output }, i) => {
        if (!output) return;
        expect(outputMismatch(output.body, outputs[i] ?? ""), `${page}:${block.line}`).toBeNull();
      });
    },
    60_000,
  );
});
