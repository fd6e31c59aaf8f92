// `npm run screenshot`: docs/dashboard.png, the README's picture of the dashboard, taken from the
// real local stack (a throwaway redis-server, the bridge, the Worker in workerd, as the tests
// start it) with demo data made through the API: a few channels, subscribers that succeed, fail
// and wait, a dead letter. Chromium as in the tests (test/helpers/browser.ts).
//
//   npm run screenshot [-- --out docs/dashboard.png] [--page channels|channel|subscription]

import { join } from "node:path";
import { parseArgs } from "node:util";
import setup from "../test/global-setup.ts";
import { launchBrowser, openDashboard } from "../test/helpers/browser.ts";
import { startReceiver, type TestReceiver } from "../test/helpers/receiver.ts";
import { API_TOKEN, type Stack, startStack } from "../test/helpers/stack.ts";

const { values } = parseArgs({
  options: {
    out: { type: "string", default: join(import.meta.dirname, "..", "docs", "dashboard.png") },
    page: { type: "string", default: "channel" },
  },
});
const pages: Record<string, string> = {
  channels: "/dashboard",
  channel: "/dashboard/channels/orders",
  subscription: "/dashboard/channels/orders/subscriptions/warehouse",
};
const path = pages[values.page];
if (!path) throw new Error(`--page must be one of ${Object.keys(pages).join(", ")}`);

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

/** Demo data: what a team a week into streamhook might have. */
async function seed(stack: Stack, ok: TestReceiver, down: TestReceiver): Promise<void> {
  ok.respond({ status: 204 });
  down.respond({ status: 503, body: "upstream unavailable" });
  const subscribe = (channel: string, body: Record<string, unknown>) =>
    call(stack, "POST", `/v1/channels/${channel}/subscriptions`, body);
  const publish = (channel: string, messages: unknown[]) =>
    call(stack, "POST", `/v1/channels/${channel}/messages`, { messages });

  await subscribe("orders", { name: "billing", url: ok.url, types: ["order.*"] });
  await subscribe("orders", { name: "warehouse", url: down.url, maxAttempts: 3 });
  await subscribe("orders", { name: "analytics", url: ok.url, batchSize: 100 });
  await subscribe("invoices", { name: "ledger", url: down.url, maxAttempts: 1 });
  await subscribe("audit.events", { name: "archive", mode: "pull", from: "earliest" });
  await call(stack, "PATCH", "/v1/channels/orders/subscriptions/analytics", { paused: true });
  await call(stack, "PATCH", "/v1/channels/audit.events", {
    retention: { maxAgeMs: 30 * 86_400_000, maxMessages: 100_000 },
  });

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
    const dashboard = await openDashboard(browser, `${stack.url}${path}`, {
      key: API_TOKEN,
      width: 1100,
      height: 900,
    });
    await dashboard.page.locator("main [data-live]").first().waitFor();
    await dashboard.page.screenshot({ path: values.out, fullPage: true });
    process.stdout.write(`wrote ${values.out}\n`);
  } finally {
    await browser.close();
    await Promise.all([ok.close(), down.close()]);
    await stack.stop();
  }
}

await main();
