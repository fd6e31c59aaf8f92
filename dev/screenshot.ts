// `npm run screenshot`: the dashboard's pictures in docs/dashboard.md, taken from the real local
// stack (a throwaway redis-server, the bridge, the Worker in workerd, as the tests start it) with
// demo data made through the API: a few channels, subscribers that succeed, fail and wait, real
// webhook requests to receivers that accept some and refuse others. Chromium as in the tests
// (test/helpers/browser.ts). It writes docs/dashboard.png (a channel: its chart and subscribers)
// and docs/dashboard-subscription.png (a failing subscriber: its attempt log), or one page.
//
// An hour cannot be waited for, so the hour before the real requests is written into two attempt
// logs directly, as records the worker would have written (recordsEntry), with `at` in the past:
// the chart then shows an hour, not one bar. Nothing else is written behind the API's back.
//
//   npm run screenshot [-- --page channels|channel|subscription --out <file>]

import { join } from "node:path";
import { type AttemptRecord, recordsEntry } from "../shared/attempt-log.ts";
import { requestTrace } from "../shared/trace.ts";
import setup from "../test/global-setup.ts";
import { launchBrowser, openDashboard } from "../test/helpers/browser.ts";
import { startReceiver, type TestReceiver } from "../test/helpers/receiver.ts";
import { API_TOKEN, type Stack, startStack } from "../test/helpers/stack.ts";
import { commandLine, parseOptions, UsageError } from "./cli.ts";

const pages: Record<string, string> = {
  channels: "/dashboard",
  channel: "/dashboard/channels/orders",
  subscription: "/dashboard/channels/orders/subscriptions/warehouse",
};
const USAGE = `usage: npm run screenshot [-- --page channels|channel|subscription [--out <file.png>]]

Takes the dashboard's pictures docs/dashboard.md shows (docs/dashboard.png and
docs/dashboard-subscription.png) from a throwaway local stack with demo data, in Debian's
chromium; or one page, to --out.

  --page <name>      one page: ${Object.keys(pages).join(", ")}
  --out <file.png>   where that page goes (default docs/dashboard-<page>.png)
  -h, --help         print this and exit`;

const values = commandLine("screenshot", USAGE, (argv) => {
  const parsed = parseOptions(argv, { out: { type: "string" }, page: { type: "string" } });
  if (parsed.page !== undefined && !(parsed.page in pages)) {
    throw new UsageError(`--page must be one of ${Object.keys(pages).join(", ")}`);
  }
  if (parsed.out !== undefined && parsed.page === undefined) {
    throw new UsageError("--out needs --page");
  }
  return parsed;
});
const docs = (file: string) => join(import.meta.dirname, "..", "docs", file);
// What to take: one page (--page, to --out), or the two docs/dashboard.md shows.
// `height`: the window's, or the whole page's when null. The subscription's page runs on below its
// newest requests: its top is the picture.
const shots: { path: string; out: string; height: number | null }[] = values.page
  ? [
      {
        path: pages[values.page] ?? "",
        out: values.out ?? docs(`dashboard-${values.page}.png`),
        height: null,
      },
    ]
  : [
      { path: pages.channel!, out: docs("dashboard.png"), height: null },
      { path: pages.subscription!, out: docs("dashboard-subscription.png"), height: 1200 },
    ];

async function call(stack: Stack, method: string, route: string, body?: unknown) {
  const res = await stack.api(route, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
}

const order = (n: number) => ({
  type: n % 3 === 0 ? "order.paid" : "order.created",
  data: { orderId: 1000 + n, total: 20 + n },
});

/** A number in [0, 1) from `n`, the same on every run: the demo's jitter. */
const jitter = (n: number) => (((Math.sin(n * 12.9898) * 43758.5453) % 1) + 1) % 1;

/**
 * The hour before now in a subscription's attempt log: a request every `everyMs`, answered as
 * `answer` says for a request that many ms ago; oldest first, as the worker appends them, so the
 * real requests that follow come after them (the ids are now, as a log's ids must follow the
 * subscription's creation: only `at` says when).
 */
async function writeHistory(
  stack: Stack,
  name: string,
  everyMs: number,
  answer: (ago: number, n: number) => { status: number; body: string },
): Promise<void> {
  const now = Date.now();
  for (let ago = 3_600_000 - everyMs, n = 0; ago > 60_000; ago -= everyMs, n++) {
    const at = Math.round(now - ago - jitter(n) * everyMs * 0.8);
    const { status, body } = answer(ago, n);
    const messages = 1 + Math.floor(jitter(n + 7) * 10);
    const record: AttemptRecord = {
      at,
      attempt: 1,
      messages,
      firstId: `${at - 900}-0`,
      lastId: `${at - 900}-${messages - 1}`,
      status,
      durationMs: 35 + Math.round(jitter(n + 3) * (status < 300 ? 180 : 2400)),
      error: status < 300 ? null : `HTTP ${status}`,
      body,
      traceparent: requestTrace([]).traceparent,
      held: [],
    };
    const fields = Object.entries(recordsEntry([record])).flat();
    await stack.redis.xadd(stack.keys.attempts("orders", name), "*", ...fields);
  }
}

const UNAVAILABLE = '{"error":"inventory service unavailable","retryable":true}';

/** Demo data: what a team a week into streamhook might have. */
async function seed(stack: Stack, ok: TestReceiver, down: TestReceiver): Promise<void> {
  // billing's endpoint refuses about one request in eight; warehouse's went down 25 min ago.
  ok.respond((req) =>
    req.n % 8 === 5 ? { status: 500, body: "deadlock detected, try again" } : { status: 204 },
  );
  down.respond({ status: 503, body: UNAVAILABLE });
  const subscribe = (channel: string, body: Record<string, unknown>) =>
    call(stack, "POST", `/v1/channels/${channel}/subscriptions`, body);
  const publish = (channel: string, messages: unknown[]) =>
    call(stack, "POST", `/v1/channels/${channel}/messages`, { messages });

  await subscribe("orders", { name: "billing", url: ok.url, types: ["order.*"], batchSize: 5 });
  await subscribe("orders", { name: "warehouse", url: down.url, maxAttempts: 3 });
  await subscribe("orders", { name: "analytics", url: ok.url, batchSize: 100 });
  await subscribe("invoices", { name: "ledger", url: down.url, maxAttempts: 1 });
  await subscribe("audit.events", { name: "archive", mode: "pull", from: "earliest" });
  await call(stack, "PATCH", "/v1/channels/orders/subscriptions/analytics", { paused: true });
  await call(stack, "PATCH", "/v1/channels/audit.events", {
    retention: { maxAgeMs: 30 * 86_400_000, maxMessages: 100_000 },
  });

  // Before the first real request: the log runs in time order.
  await writeHistory(stack, "billing", 150_000, (_, n) =>
    jitter(n + 11) < 0.12
      ? { status: 500, body: "deadlock detected, try again" }
      : { status: 204, body: "" },
  );
  await writeHistory(stack, "warehouse", 120_000, (ago) =>
    ago < 25 * 60_000 ? { status: 503, body: UNAVAILABLE } : { status: 200, body: '{"ok":true}' },
  );

  await publish(
    "orders",
    Array.from({ length: 40 }, (_, i) => order(i)),
  );
  await publish("invoices", [{ type: "invoice.issued", data: { invoice: "INV-7" } }]);
  await publish(
    "audit.events",
    Array.from({ length: 120 }, (_, i) => ({ type: "user.login", data: { user: i } })),
  );
  await call(stack, "POST", "/v1/deliver");
  await publish(
    "orders",
    Array.from({ length: 6 }, (_, i) => order(40 + i)),
  );
}

async function main(): Promise<void> {
  // As dev/bootstrap.mjs sets them for `npm test`: wrangler stays offline and quiet.
  Object.assign(process.env, {
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
  });
  setup(); // builds the Worker, as `npm test` does
  const [stack, browser, ok, down] = await Promise.all([
    startStack({ vars: { KICK_ON_PUBLISH: "false" } }),
    launchBrowser(),
    startReceiver(),
    startReceiver(),
  ]);
  try {
    await seed(stack, ok, down);
    for (const shot of shots) {
      const dashboard = await openDashboard(browser, `${stack.url}${shot.path}`, {
        key: API_TOKEN,
        width: 1100,
        height: shot.height ?? 900,
      });
      await dashboard.page.locator("main [data-live]").first().waitFor();
      // The newest request's answer, opened: what the endpoint said.
      const answer = dashboard.page.locator("#sub-attempts details summary").first();
      if ((await answer.count()) > 0) await answer.click();
      await dashboard.page.screenshot({ path: shot.out, fullPage: shot.height === null });
      await dashboard.close();
      process.stdout.write(`wrote ${shot.out}\n`);
    }
  } finally {
    await browser.close();
    await Promise.all([ok.close(), down.close()]);
    await stack.stop();
  }
}

await main();
