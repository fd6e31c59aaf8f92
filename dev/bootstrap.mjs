#!/usr/bin/env node
// First step of `npm run dev`, `npm test` and `npm run bench` on any machine: make sure the
// project can run, then hand over to the real command on the project's own Node.
//
// Plain JavaScript on purpose: on a fresh clone this runs on the machine's Node (20 here), before
// node_modules exists. It installs dependencies unless they were installed from this lockfile,
// installs Debian's redis-server when no redis-server is on PATH (and no Upstash database is
// configured), then runs the command with node_modules/.bin first on PATH, so `node` there is the
// Node 24 that the `node` devDependency provides (wrangler needs >= 22.12).
//
//   node dev/bootstrap.mjs dev|test|bench|receiver|listen [args...]
//
// `--help` (or -h) among the args needs none of the installs: when the project's Node is already
// there, the command answers it at once. Each command parses its own options (dev/cli.ts: an
// unknown one exits 2 with the usage), so the bootstrap passes args through untouched.

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, lstatSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = join(root, "node_modules", ".bin");

const commands = {
  dev: [join(bin, "node"), join(root, "dev", "stack.ts")],
  test: [join(bin, "vitest"), "run"],
  bench: [join(bin, "node"), join(root, "bench", "run.ts")],
  receiver: [join(bin, "node"), join(root, "dev", "receiver.ts")],
  listen: [join(bin, "node"), join(root, "dev", "listen.ts")],
};

function log(message) {
  process.stderr.write(`[bootstrap] ${message}\n`);
}

// node_modules is current when it was installed from this exact package-lock.json.
function ensureDependencies() {
  const stamp = join(root, "node_modules", ".streamhook-lock-sha256");
  const lockHash = () =>
    createHash("sha256")
      .update(readFileSync(join(root, "package-lock.json")))
      .digest("hex");
  const current = existsSync(join(bin, "node")) && existsSync(stamp);
  if (current && readFileSync(stamp, "utf8") === lockHash()) return;
  // A node_modules linked from another checkout (a git worktree sharing one install): `npm ci`
  // would empty that checkout's install under it. Install there instead.
  const modules = join(root, "node_modules");
  if (existsSync(modules) && lstatSync(modules).isSymbolicLink()) {
    log("node_modules is a link to another checkout's, and does not match package-lock.json:");
    log("run `npm ci` in that checkout (or replace the link with a directory), then retry");
    process.exit(1);
  }
  log("installing dependencies (npm ci, from package-lock.json)...");
  if (Number(process.versions.node.split(".")[0]) < 22) {
    // npm checks engines against the Node that runs it; the project runs wrangler with its own.
    log(
      `npm warns EBADENGINE for wrangler and its tools on Node ${process.versions.node} (they want`,
    );
    log(
      "Node >= 22.12): expected, the project runs them with its own Node 24 (the `node` devDependency)",
    );
  }
  // `npm ci` installs exactly the lockfile and never rewrites it. The lockfile lists every
  // platform's optional binaries (workerd's, Biome's): regenerate it with
  // `npm install --package-lock-only` in a checkout without node_modules, since npm 11 drops
  // other platforms' entries when it writes the lockfile next to an installed tree.
  execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: root, stdio: "inherit" });
  writeFileSync(stamp, lockHash());
}

function has(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

/** Installs Debian's `pkg` with apt-get (sudo -n unless root) unless `present()`; exits if it can't. */
function aptInstall(pkg, present, why) {
  if (present()) return;
  const isRoot = process.getuid?.() === 0;
  const apt = (...args) =>
    spawnSync(isRoot ? "apt-get" : "sudo", isRoot ? args : ["-n", "apt-get", ...args], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status === 0;
  log(`${pkg} not found: installing Debian's ${pkg}${why}...`);
  if (!apt("install", "-y", pkg)) {
    apt("update");
    apt("install", "-y", pkg);
  }
  if (!present()) {
    log(`could not install ${pkg}; install it (apt-get install -y ${pkg}) and retry`);
    process.exit(1);
  }
}

const ensureRedis = () => aptInstall("redis-server", () => has("redis-server"), "");

// The dashboard's browser tests drive Debian's chromium (test/helpers/browser.ts); CHROMIUM_PATH
// names another binary, and then nothing is installed.
const ensureChromium = () =>
  aptInstall(
    "chromium",
    () => Boolean(process.env.CHROMIUM_PATH) || existsSync("/usr/bin/chromium"),
    " (for the dashboard's browser tests)",
  );

const USAGE = `usage: node dev/bootstrap.mjs <command> [args...]   (what the npm scripts run)

  dev       npm run dev        the local stack: redis-server, the REST bridge, the Worker
  test      npm test           the test suite (vitest run)
  bench     npm run bench      the benchmark
  receiver  npm run receiver   a webhook endpoint that verifies and prints what it gets
  listen    npm run listen     pulls a pull subscription into a file

Installs what the command needs first (npm ci, redis-server, chromium for the tests). \`npm run <command> -- --help\`
prints a command's own usage.`;

const [name = "test", ...args] = process.argv.slice(2);
if (name === "--help" || name === "-h") {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const command = commands[name];
if (!command) {
  process.stderr.write(`bootstrap: unknown command "${name}"\n\n${USAGE}\n`);
  process.exit(2);
}

const helpOnly = args.includes("--help") || args.includes("-h");
if (!(helpOnly && existsSync(join(bin, "node")))) {
  ensureDependencies();
  const needsRedis =
    name === "test" || name === "bench" || (name === "dev" && !process.env.UPSTASH_REDIS_REST_URL);
  if (needsRedis && !helpOnly) ensureRedis();
  if (name === "test" && !helpOnly) ensureChromium();
}

const env = {
  ...process.env,
  PATH: `${bin}:${process.env.PATH ?? ""}`,
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};
const child = spawn(command[0], [...command.slice(1), ...args], {
  cwd: root,
  env,
  stdio: "inherit",
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => child.kill(signal));
}
child.on("exit", (code, signal) => {
  process.exit(code ?? (signal ? 1 : 0));
});
