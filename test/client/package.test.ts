// The client as npm ships it: `npm pack` of the @streamhook/client workspace (its prepack
// builds it), installed from the tarball into a fresh project that has no TypeScript and nothing
// else (openapi-fetch comes from the npm registry), then used from that project's node_modules
// against the real stack: by a plain Node ESM script on the machine's Node and on the project's,
// and by a Worker that wrangler bundles from those node_modules and workerd runs. The project's
// files are test/client/package-consumer/.

import { execFile } from "node:child_process";
import {
  accessSync,
  constants,
  cpSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
} from "node:fs";
import { readdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { createStreamhookClient, type StreamhookClient } from "@streamhook/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestHarness, type TestHarness } from "wrangler";
import { startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { until } from "../helpers/schedule.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const FIXTURES = join(import.meta.dirname, "package-consumer");
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/**
 * The machine's own `node` (the first on PATH outside a node_modules/.bin, which holds the
 * project's Node 24): Node 20 here, the oldest the package supports.
 */
function machineNode(): string {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "" || dir.includes("node_modules")) continue;
    try {
      accessSync(join(dir, "node"), constants.X_OK);
      return join(dir, "node");
    } catch {}
  }
  throw new Error("no node on PATH outside node_modules");
}

let project: string;
/** What `npm pack --json` said it packed. */
let packed: { filename: string; files: { path: string }[]; size: number };
let stack: Stack;
let streamhook: StreamhookClient;

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "streamhook-package-"));
  const [pack] = await Promise.all([
    run("npm", ["pack", "-w", "@streamhook/client", "--json", "--pack-destination", project], {
      cwd: ROOT,
    }),
    startStack().then((started) => {
      stack = started;
    }),
  ]);
  // The prepack's build prints before npm's JSON.
  [packed] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf("[")));
  cpSync(FIXTURES, project, { recursive: true });
  await writeFile(
    join(project, "package.json"),
    JSON.stringify({ name: "consumer", private: true, type: "module" }),
  );
  await run("npm", ["install", "--no-audit", "--no-fund", join(project, packed.filename)], {
    cwd: project,
  });
  streamhook = createStreamhookClient({ baseUrl: stack.url, token: API_TOKEN });
}, 180_000);

afterAll(async () => {
  await stack?.stop();
  if (project) rmSync(project, { recursive: true, force: true });
});

describe("the packed package", () => {
  it("holds the build, the README and the LICENSE, and nothing else", () => {
    const paths = packed.files.map((f) => f.path).sort();
    expect(paths.filter((p) => !p.startsWith("dist/"))).toEqual([
      "LICENSE",
      "README.md",
      "package.json",
    ]);
    const modules = [
      "api",
      "client",
      "errors",
      "index",
      "retry",
      "schedules",
      "subscriptions",
      "webhooks",
    ];
    expect(paths.filter((p) => p.startsWith("dist/"))).toEqual(
      [...modules.flatMap((m) => [`dist/${m}.d.ts`, `dist/${m}.js`]), "dist/schema.d.ts"].sort(),
    );
  });

  it("gives the receiver's entry point no imports: a receiver bundles no openapi-fetch", () => {
    const installed = join(project, "node_modules", "@streamhook", "client", "dist");
    expect(readFileSync(join(installed, "webhooks.js"), "utf8")).not.toMatch(/^\s*import\b/m);
    expect(readFileSync(join(installed, "client.js"), "utf8")).toMatch(
      /^import .* "openapi-fetch"/m,
    );
  });

  it("installs with openapi-fetch as its only dependency, and no TypeScript", async () => {
    const installed = async (dir: string): Promise<string[]> =>
      (await readdir(dir, { withFileTypes: true })).flatMap((entry) =>
        entry.name.startsWith(".") ? [] : [entry.name],
      );
    const top = await installed(join(project, "node_modules"));
    const scoped = await installed(join(project, "node_modules", "@streamhook"));
    expect([
      ...top.filter((n) => n !== "@streamhook"),
      ...scoped.map((n) => `@streamhook/${n}`),
    ]).toEqual(["openapi-fetch", "openapi-typescript-helpers", "@streamhook/client"]);
  });

  it("types what it exports: a TypeScript user's mistakes are errors", async () => {
    // The project's tsc (7) on typed.ts, resolving the package as Node does (NodeNext), against
    // the installed dist/*.d.ts; `types: []`, so nothing of Node or Workers helps it.
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const options = ["--noEmit", "--strict", "--skipLibCheck", "false", "--types", ""];
    const target = ["--target", "es2022", "--lib", "es2023,dom", "--module", "nodenext"];
    const checked = await run(process.execPath, [tsc, ...options, ...target, "typed.ts"], {
      cwd: project,
    }).then(
      () => "no errors",
      (error: { stdout: string }) => error.stdout,
    );
    expect(checked).toBe("no errors");
  });
});

describe("a plain Node ESM script importing the installed package", () => {
  it.each([
    ["the machine's Node", machineNode(), "node-machine"],
    ["the project's Node 24", process.execPath, "node-project"],
  ])("publishes, lists and verifies its webhook, on %s", async (_name, node, channel) => {
    const { stdout } = await run(node, ["node.mjs", channel], {
      cwd: project,
      env: { ...process.env, STREAMHOOK_URL: stack.url, API_TOKEN, WEBHOOK_SECRET: SECRET },
      timeout: 20_000,
    });
    const result = JSON.parse(stdout);
    expect(result.node).toBe((await run(node, ["--version"])).stdout.trim());
    expect(result.published).toEqual({ id: expect.any(String), replayed: false });
    expect(result.listed).toEqual(["node"]);
    expect(result.missing).toEqual({
      isStreamhookError: true,
      status: 404,
      code: "channel_not_found",
    });
    expect(result.batch).toMatchObject({
      channel,
      subscription: "node",
      messages: [{ id: result.published.id, type: "order.created", data: { orderId: 42 } }],
    });
    expect(result.tampered).toBe("refused: no signature matches the secret");
    // Its 204 acknowledged the message.
    await until(
      "acknowledged",
      async () => (await streamhook.subscriptions.get(channel, "node")).pending === 0,
    );
  });
});

describe("a Worker bundled by wrangler from the installed package", () => {
  let worker: TestHarness;
  let workerUrl: string;
  let verified: TestReceiver;

  beforeAll(async () => {
    // Bundled exactly as `wrangler deploy` would, in the consumer project: @streamhook/client can
    // only come from its node_modules (the project is outside this repository).
    const wrangler = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
    await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", "out"], {
      cwd: project,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    });
    verified = await startReceiver();
    worker = createTestHarness({
      root: project,
      workers: [
        {
          configPath: join(project, "wrangler.toml"),
          prebuiltWorkerDir: join(project, "out"),
          vars: {
            STREAMHOOK_URL: stack.url,
            API_TOKEN,
            WEBHOOK_SECRET: SECRET,
            VERIFIED_URL: verified.url,
          },
        },
      ],
    });
    workerUrl = (await worker.listen()).url.href.replace(/\/$/, "");
  }, 120_000);

  afterAll(async () => {
    await worker?.close();
    await verified?.close();
  });

  it("was bundled from the package's build in the project's node_modules", () => {
    const bundle = readFileSync(join(project, "out", "worker.js"), "utf8");
    expect(bundle).toContain("node_modules/@streamhook/client/dist/client.js");
    expect(bundle).toContain("node_modules/@streamhook/client/dist/webhooks.js");
    expect(bundle).not.toContain(realpathSync(ROOT));
  });

  it("publishes, lists, verifies its webhook in workerd, and refuses it tampered", async () => {
    const channel = "worker-orders";
    // A second subscriber with the same secret records a genuine signed request to tamper with.
    const tap = await startReceiver({ secret: SECRET });
    try {
      await streamhook.subscriptions.create(channel, {
        name: "worker",
        url: `${workerUrl}/webhooks`,
        secret: SECRET,
      });
      await streamhook.subscriptions.create(channel, { name: "tap", url: tap.url, secret: SECRET });

      const publish = await fetch(`${workerUrl}/publish?channel=${channel}`, {
        method: "POST",
        body: JSON.stringify({ orderId: 7 }),
      });
      expect(publish.status, await publish.clone().text()).toBe(200);
      const published = (await publish.json()) as { id: string; replayed: boolean };
      expect(published.replayed).toBe(false);

      const listed = await fetch(`${workerUrl}/subscriptions?channel=${channel}`);
      expect(((await listed.json()) as string[]).sort()).toEqual(["tap", "worker"]);

      await verified.waitFor((r) => r.requests.length === 1);
      expect(verified.requests[0]!.body).toMatchObject({
        channel,
        subscription: "worker",
        messages: [{ id: published.id, data: { orderId: 7 } }],
      });
      await until(
        "acknowledged",
        async () => (await streamhook.subscriptions.get(channel, "worker")).pending === 0,
      );

      await tap.waitFor((r) => r.requests.length === 1);
      const { raw, headers } = tap.requests[0]!;
      const signed = { "webhook-id": "", "webhook-timestamp": "", "webhook-signature": "" };
      for (const name of Object.keys(signed) as (keyof typeof signed)[]) {
        signed[name] = headers[name]!;
      }
      const replay = (body: string) =>
        fetch(`${workerUrl}/webhooks`, { method: "POST", headers: signed, body });
      const tampered = await replay(raw.replace('"orderId":7', '"orderId":8'));
      expect(tampered.status).toBe(401);
      expect(await tampered.json()).toEqual({ refused: "no signature matches the secret" });
      expect(verified.requests).toHaveLength(1);
      // The same request untouched passes: the 401 was for the changed byte.
      expect((await replay(raw)).status).toBe(204);
      expect(verified.requests[1]!.body).toMatchObject({ subscription: "tap" });
    } finally {
      await tap.close();
    }
  });
});
