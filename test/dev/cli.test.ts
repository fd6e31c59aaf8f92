// The command-line conventions of `npm run dev|receiver|listen|bench` (dev/cli.ts), as a user
// meets them: each command run as a real process. --help goes through dev/bootstrap.mjs, as the
// npm scripts run it (it must answer without installing anything); a wrong command line goes to
// the command itself (through the bootstrap it would first check the installs), and is answered
// on stderr with the usage and exit 2, before anything starts.

import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCommand } from "../helpers/run-command.ts";

// Should a command ever start instead of refusing, it must not touch a developer's own stack:
// free ports and a throwaway data directory for `npm run dev`.
const env: Record<string, string> = {};
beforeAll(async () => {
  const freePort = async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    return String(port);
  };
  Object.assign(env, {
    PORT: await freePort(),
    REDIS_PORT: await freePort(),
    BRIDGE_PORT: await freePort(),
    REDIS_DIR: await mkdtemp(join(tmpdir(), "cli-test-")),
  });
});
afterAll(async () => {
  if (env.REDIS_DIR) await rm(env.REDIS_DIR, { recursive: true, force: true });
});

const run = (script: string, args: string[]) => runCommand(script, args, { env });

const COMMANDS = [
  ["dev", "dev/stack.ts"],
  ["receiver", "dev/receiver.ts"],
  ["listen", "dev/listen.ts"],
  ["bench", "bench/run.ts"],
] as const;

describe("npm run <command> -- --help", () => {
  it.each(COMMANDS)("%s prints its usage on stdout and exits 0", async (command) => {
    const { code, stdout, stderr } = await run("dev/bootstrap.mjs", [command, "--help"]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^usage: npm run ${command}\\b`));
    expect(stdout).toContain("-h, --help");
    expect(stderr).toBe("");
  });

  it.each(COMMANDS)(
    "%s answers -h anywhere on the line, even beside a bad option",
    async (command) => {
      const { code, stdout } = await run("dev/bootstrap.mjs", [command, "--bogus", "-h"]);
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^usage: npm run ${command}\\b`));
    },
  );
});

// Not through the bootstrap (`node dev/<script>.ts` in package.json), same conventions.
const DIRECT = [
  ["screenshot", "dev/screenshot.ts"],
  ["client:generate", "dev/generate-client.ts"],
  ["bridge", "dev/bridge-main.ts"],
] as const;

describe("npm run screenshot, client:generate and bridge", () => {
  it.each(DIRECT)(
    "%s prints its usage on --help and does nothing else",
    async (command, script) => {
      const { code, stdout } = await run(script, ["--help"]);
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^usage: npm run ${command}\\b`));
    },
  );

  it.each(DIRECT)("%s refuses an unknown option with exit 2", async (_, script) => {
    const { code, stdout, stderr } = await run(script, ["--bogus"]);
    expect(code).toBe(2);
    expect(stderr).toContain("Unknown option '--bogus'");
    expect(stdout).toBe("");
  });

  it("screenshot refuses --out without --page, and a page it does not know", async () => {
    expect((await run("dev/screenshot.ts", ["--out", "x.png"])).code).toBe(2);
    const { code, stderr } = await run("dev/screenshot.ts", ["--page", "nope"]);
    expect(code).toBe(2);
    expect(stderr).toContain("--page must be one of");
  });
});

describe("a wrong command line", () => {
  it.each(COMMANDS)(
    "%s refuses an unknown option: exit 2, the usage on stderr",
    async (_, script) => {
      const { code, stdout, stderr } = await run(script, ["--bogus"]);
      expect(code).toBe(2);
      expect(stderr).toContain("Unknown option '--bogus'");
      expect(stderr).toMatch(/^usage: npm run /m);
      expect(stdout).toBe("");
    },
  );

  it.each(COMMANDS)("%s refuses a stray argument", async (_, script) => {
    const { code, stderr } = await run(script, ["stray"]);
    expect(code).toBe(2);
    expect(stderr).toContain("Unexpected argument 'stray'");
  });

  it("listen says which required option is missing", async () => {
    const { code, stderr } = await run("dev/listen.ts", ["--channel", "orders", "--out", "x"]);
    expect(code).toBe(2);
    expect(stderr).toContain("listen: --subscription is required");
  });

  it("listen refuses a --max that is not a whole number", async () => {
    const args = ["--channel", "orders", "--subscription", "billing", "--out", "x"];
    const { code, stderr } = await run("dev/listen.ts", [...args, "--max", "ten"]);
    expect(code).toBe(2);
    expect(stderr).toContain('--max must be a whole number of at least 1, got "ten"');
  });
});

describe("dev/bootstrap.mjs", () => {
  it("lists the commands on --help, exit 0", async () => {
    const { code, stdout } = await run("dev/bootstrap.mjs", ["--help"]);
    expect(code).toBe(0);
    for (const [command] of COMMANDS) expect(stdout).toContain(`npm run ${command}`);
  });

  it("refuses an unknown command with exit 2 and the list on stderr", async () => {
    const { code, stdout, stderr } = await run("dev/bootstrap.mjs", ["deploy"]);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown command "deploy"');
    expect(stderr).toContain("npm run bench");
    expect(stdout).toBe("");
  });
});
