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

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
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
  log("installing dependencies (npm ci, from package-lock.json)...");
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

function ensureRedis() {
  if (has("redis-server")) return;
  const isRoot = process.getuid?.() === 0;
  const apt = (...args) =>
    spawnSync(isRoot ? "apt-get" : "sudo", isRoot ? args : ["-n", "apt-get", ...args], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status === 0;
  log("redis-server not found: installing Debian's redis-server...");
  if (!apt("install", "-y", "redis-server")) {
    apt("update");
    apt("install", "-y", "redis-server");
  }
  if (!has("redis-server")) {
    log("could not install redis-server; install it (apt-get install -y redis-server) and retry");
    process.exit(1);
  }
}

// The dashboard's browser tests drive Debian's chromium (test/helpers/browser.ts); CHROMIUM_PATH
// names another binary, and then nothing is installed.
function ensureChromium() {
  if (process.env.CHROMIUM_PATH || existsSync("/usr/bin/chromium")) return;
  const isRoot = process.getuid?.() === 0;
  const apt = (...args) =>
    spawnSync(isRoot ? "apt-get" : "sudo", isRoot ? args : ["-n", "apt-get", ...args], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    }).status === 0;
  log("chromium not found: installing Debian's chromium (for the dashboard's browser tests)...");
  if (!apt("install", "-y", "chromium")) {
    apt("update");
    apt("install", "-y", "chromium");
  }
  if (!existsSync("/usr/bin/chromium")) {
    log("could not install chromium; install it (apt-get install -y chromium) or set CHROMIUM_PATH");
    process.exit(1);
  }
}

const [name = "test", ...args] = process.argv.slice(2);
const command = commands[name];
if (!command) {
  log(`unknown command "${name}"; expected one of ${Object.keys(commands).join(", ")}`);
  process.exit(2);
}

ensureDependencies();
const needsRedis =
  name === "test" || name === "bench" || (name === "dev" && !process.env.UPSTASH_REDIS_REST_URL);
if (needsRedis) ensureRedis();
if (name === "test") ensureChromium();

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
