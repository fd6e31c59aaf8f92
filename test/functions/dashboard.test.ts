// The dashboard (GET /dashboard) in a real headless Chromium against the real stack: what a
// person signed in with a key sees and can do, checked against what the JSON API says.

import { join } from "node:path";
import type { Browser, Locator, Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { WORKER_BUILD_DIR } from "../global-setup.ts";
import { type DashboardPage, launchBrowser, openDashboard } from "../helpers/browser.ts";
import { createKey } from "../helpers/keys.ts";
import type { Attempt } from "../helpers/observe.ts";
import { type Reply, startReceiver, type TestReceiver } from "../helpers/receiver.ts";
import { deliverUntil, settled } from "../helpers/schedule.ts";
import { createSchedule, fireCron, type ScheduleJson } from "../helpers/schedules.ts";
import { API_TOKEN, type Stack, startStack } from "../helpers/stack.ts";
import { getSubscription, publish, runPass, subscribe } from "../helpers/subscriptions.ts";

let stack: Stack;
let browser: Browser;
let receiver: TestReceiver;
let channel: string;
let counter = 0;
const open: DashboardPage[] = [];

beforeAll(async () => {
  // No kick: delivery happens in the passes a test runs, so what a page shows holds still.
  [stack, browser] = await Promise.all([
    startStack({ vars: { KICK_ON_PUBLISH: "false" } }),
    launchBrowser(),
  ]);
});
afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});
beforeEach(async () => {
  receiver = await startReceiver();
  channel = `dash-${++counter}`;
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()));
  await receiver.close();
});

/** Opens a dashboard page (path under /dashboard) signed in with `key` (API_TOKEN by default). */
async function visit(
  path = "",
  options: { key?: string; width?: number; refreshMs?: number } = {},
): Promise<DashboardPage> {
  const query = options.refreshMs ? `?refreshMs=${options.refreshMs}` : "";
  const dashboard = await openDashboard(browser, `${stack.url}/dashboard${path}${query}`, {
    key: options.key ?? API_TOKEN,
    width: options.width,
  });
  open.push(dashboard);
  return dashboard;
}

const subPath = (name: string) => `/channels/${channel}/subscriptions/${name}`;

async function json<T>(path: string): Promise<T> {
  const res = await stack.api(path);
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as T;
}

/** A subscription's whole attempt log through GET .../attempts, newest first, page by page. */
async function attemptsOf(name: string): Promise<Attempt[]> {
  const all: Attempt[] = [];
  let after = "";
  for (;;) {
    const page = await json<{ attempts: Attempt[]; next: string | null }>(
      `/v1/channels/${channel}/subscriptions/${name}/attempts?limit=1000${after}`,
    );
    all.push(...page.attempts);
    if (page.next === null) return all;
    after = `&after=${page.next}`;
  }
}

/** Runs passes until every one of the channel's `names` has nothing left to send. */
async function deliverAll(names: string[], timeoutMs?: number): Promise<void> {
  const done = async () =>
    (await Promise.all(names.map((name) => settled(stack, channel, name)))).every(Boolean);
  await deliverUntil(stack, channel, done, `${names.join(", ")} settled`, { timeoutMs });
}

/** The API's value a cell shows: its <data value>, or its <time datetime>, or null for "—". */
async function shown(cell: Locator): Promise<string | null> {
  const data = cell.locator("data");
  if ((await data.count()) > 0) return data.first().getAttribute("value");
  const time = cell.locator("time");
  if ((await time.count()) > 0) return time.first().getAttribute("datetime");
  return null;
}

const cell = (row: Locator, label: string) => row.locator(`td[data-label="${label}"]`);
const fact = (page: Page, term: string) =>
  page.locator(`main .item[data-term="${term}"]`).locator("dd");

interface ChannelJson {
  name: string;
  length: number;
  subscriptions: number;
  sizeBytes: number;
  lastPublishedAt: string | null;
  retention: { maxAgeMs: number | null; maxMessages: number | null };
  retentionIsDefault: boolean;
}

describe("serving the dashboard", () => {
  it("sends a strict Content-Security-Policy and no inline script or style", async () => {
    for (const path of ["/dashboard", `/dashboard/channels/x/subscriptions/y`]) {
      const res = await fetch(`${stack.url}${path}`);
      expect(res.status).toBe(200);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain("unsafe-inline");
      const html = await res.text();
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
      expect(html).not.toMatch(/\s(style|on[a-z]+)=/);
    }
  });

  it("answers 401 to a fragment without a key or with a wrong one", async () => {
    const fragment = `${stack.url}/dashboard/fragments/channels`;
    expect((await fetch(fragment)).status).toBe(401);
    const wrong = await fetch(fragment, { headers: { authorization: "Bearer sk_wrong" } });
    expect(wrong.status).toBe(401);
    const right = await fetch(fragment, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(right.status).toBe(200);
  });

  it("answers fragments as the API answers: 404 for what does not exist, 429 over the key's rate limit", async () => {
    const get = (path: string, token = API_TOKEN) =>
      fetch(`${stack.url}/dashboard/fragments${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
    const missing = await get(`/channels/${channel}`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe(
      "channel_not_found",
    );
    await publish(stack, channel, [{ data: 1 }]);
    expect((await get(`/channels/${channel}/subscriptions/nobody`)).status).toBe(404);
    const key = await createKey(stack, {
      name: "limited-rate",
      scopes: ["read"],
      rateLimit: { requests: 2, windowMs: 60_000 },
    });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await get("/channels", key.secret)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it("counts a page as one request of the key, however many attempt logs it reads", async () => {
    for (const name of ["a", "b", "c"])
      await subscribe(stack, channel, { name, url: receiver.url });
    const key = await createKey(stack, {
      name: "limited-pages",
      scopes: ["read"],
      rateLimit: { requests: 2, windowMs: 60_000 },
    });
    const get = (path: string) =>
      fetch(`${stack.url}/dashboard/fragments/channels/${channel}${path}`, {
        headers: { authorization: `Bearer ${key.secret}` },
      });
    const answers = [await get(""), await get("/subscriptions/a"), await get("")];
    expect(answers.map((res) => res.status)).toEqual([200, 200, 429]);
    expect(await answers[0]!.text()).toContain('data-delivered="0"');
    expect(await answers[1]!.text()).toContain("No requests yet.");
  });

  it("shows the sign-in form again, with a message, when the key is refused", async () => {
    const { page, errors } = await visit("", { key: "sk_not-a-key" });
    await expect.poll(() => page.locator("#signin-message").textContent()).toContain("refused");
    expect(await page.locator("#signin").isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    // The 401 is the only complaint: no CSP violation, no script error.
    expect(errors.filter((e) => !e.includes("401"))).toEqual([]);
  });

  it("signs out when its key is deleted while a page is open", async () => {
    const key = await createKey(stack, { name: "short-lived", scopes: ["read"] });
    const { page } = await visit("", { key: key.secret, refreshMs: 500 });
    await page.locator("main h1").waitFor();
    expect((await stack.api(`/v1/keys/${key.id}`, { method: "DELETE" })).status).toBe(204);
    await page.locator("#signin").waitFor({ state: "visible" });
    expect(await page.locator("#signin-message").textContent()).toContain("refused");
  });
});

describe("the channels page", () => {
  it("shows each channel's length, subscriptions, last publish, retention and size as the API does", async () => {
    const other = `${channel}-b`;
    await publish(stack, channel, [{ data: { n: 1 } }, { data: { n: 2 }, type: "t" }]);
    await publish(stack, other, [{ data: "x".repeat(3000) }]);
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const patched = await stack.api(`/v1/channels/${other}`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ retention: { maxAgeMs: 3_600_000, maxMessages: 500 } }),
    });
    expect(patched.status).toBe(200);

    const { page, errors } = await visit();
    await page.locator(`tr[data-channel="${other}"]`).waitFor();
    await page.screenshot({ path: join(`${WORKER_BUILD_DIR}.dashboard-channels.png`) });
    const list = await json<{ channels: { name: string }[] }>("/v1/channels");
    for (const name of [channel, other]) {
      const api = await json<ChannelJson>(`/v1/channels/${name}`);
      expect(list.channels).toContainEqual(expect.objectContaining({ name }));
      const row = page.locator(`tr[data-channel="${name}"]`);
      expect(await row.locator("a").textContent()).toBe(name);
      expect(await shown(cell(row, "Messages"))).toBe(String(api.length));
      expect(await cell(row, "Messages").textContent()).toBe(String(api.length));
      expect(await shown(cell(row, "Subscriptions"))).toBe(String(api.subscriptions));
      expect(await shown(cell(row, "Size"))).toBe(String(api.sizeBytes));
      expect(await shown(cell(row, "Last publish"))).toBe(api.lastPublishedAt);
      const retention = cell(row, "Retention").locator("span").first();
      expect(await retention.getAttribute("data-max-age-ms")).toBe(
        String(api.retention.maxAgeMs ?? ""),
      );
      expect(await retention.getAttribute("data-max-messages")).toBe(
        String(api.retention.maxMessages ?? ""),
      );
    }
    const own = page.locator(`tr[data-channel="${other}"] td[data-label="Retention"]`);
    expect(await own.textContent()).toBe("1 h or 500 messages");
    const size = await cell(page.locator(`tr[data-channel="${other}"]`), "Size").textContent();
    expect(size).toMatch(/^\d+(\.\d)? KiB$/);
    expect(errors).toEqual([]);
  });

  it("lists only the channels a key limited to some channels may see", async () => {
    await publish(stack, `${channel}-mine`, [{ data: 1 }]);
    await publish(stack, `${channel}-theirs`, [{ data: 1 }]);
    const key = await createKey(stack, {
      name: "limited",
      scopes: ["read"],
      channels: [`${channel}-mine`],
    });
    const { page } = await visit("", { key: key.secret });
    await page.locator(`tr[data-channel="${channel}-mine"]`).waitFor();
    expect(await page.locator("tr[data-channel]").count()).toBe(1);

    const theirs = await visit(`/channels/${channel}-theirs`, { key: key.secret });
    await expect
      .poll(() => theirs.page.locator("#notice").textContent())
      .toContain(`may not use channel "${channel}-theirs"`);
  });
});

interface SubscriptionJson {
  name: string;
  status: string;
  paused: boolean;
  lag: number | null;
  pending: number;
  deadLetters: number;
  lastError: string | null;
  lastErrorAt: string | null;
  nextAttemptAt: string | null;
}

describe("the channel page", () => {
  it("shows each subscription's status, lag, pending, last error and next attempt as the API does", async () => {
    await subscribe(stack, channel, { name: "failing", url: receiver.url, maxAttempts: 5 });
    await subscribe(stack, channel, { name: "resting", url: receiver.url });
    await stack.api(`/v1/channels/${channel}/subscriptions/resting`, {
      method: "PATCH",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ paused: true }),
    });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }, { data: 3 }]);
    await runPass(stack);

    const { page, errors } = await visit(`/channels/${channel}`);
    await page.locator('tr[data-subscription="resting"]').waitFor();
    const { subscriptions } = await json<{ subscriptions: SubscriptionJson[] }>(
      `/v1/channels/${channel}/subscriptions`,
    );
    const failing = subscriptions.find((s) => s.name === "failing")!;
    expect(failing).toMatchObject({ status: "failing", pending: 3, lastError: "HTTP 500" });
    expect(failing.nextAttemptAt).not.toBeNull();
    for (const sub of subscriptions) {
      const row = page.locator(`tr[data-subscription="${sub.name}"]`);
      expect(await cell(row, "Status").textContent()).toBe(sub.status);
      expect(await shown(cell(row, "Lag"))).toBe(String(sub.lag));
      expect(await shown(cell(row, "Pending"))).toBe(String(sub.pending));
      expect(await shown(cell(row, "Dead letters"))).toBe(String(sub.deadLetters));
      expect(await shown(cell(row, "Next attempt"))).toBe(sub.nextAttemptAt);
      const lastError = cell(row, "Last error").locator("[data-last-error]");
      if (sub.lastError === null) expect(await lastError.count()).toBe(0);
      else expect(await lastError.getAttribute("data-last-error")).toBe(sub.lastError);
    }
    expect(
      await cell(page.locator('tr[data-subscription="failing"]'), "Next attempt").textContent(),
    ).toMatch(/^in \d+/);
    const info = await json<ChannelJson>(`/v1/channels/${channel}`);
    expect(await shown(fact(page, "Messages"))).toBe(String(info.length));
    expect(await shown(fact(page, "Size"))).toBe(String(info.sizeBytes));
    expect(await shown(fact(page, "Last publish"))).toBe(info.lastPublishedAt);
    await page.screenshot({ path: `${WORKER_BUILD_DIR}.dashboard-channel.png`, fullPage: true });
    expect(errors).toEqual([]);
  });

  it("charts the last hour's requests as the attempt logs count them, and names a log too busy to reach back an hour", async () => {
    // busy: one message per request, one request at a time, more requests than a log of one
    // record per entry keeps (about the last 1,000 entries; records written together share one,
    // up to ten); steady: ten per request. Every fourth request of each fails, and the others
    // are accepted.
    await subscribe(stack, channel, {
      name: "busy",
      url: receiver.url,
      batchSize: 1,
      maxAttempts: 1,
      maxConcurrency: 1,
    });
    await subscribe(stack, channel, {
      name: "steady",
      url: receiver.url,
      batchSize: 10,
      maxAttempts: 1,
    });
    await subscribe(stack, channel, { name: "pulled", mode: "pull" });
    const sent = { busy: 0, steady: 0 };
    receiver.respond((req) => {
      const n = ++sent[req.body!.subscription as keyof typeof sent];
      return n % 4 === 0 ? { status: 500, body: "try later" } : { status: 204 };
    });
    const messages = Array.from({ length: 1000 }, (_, n) => ({ data: { n } }));
    await publish(stack, channel, messages);
    await publish(stack, channel, messages.slice(0, 150));
    // About 1,300 requests: 4 s here, allowed far longer on a loaded machine (the it's timeout).
    await deliverAll(["busy", "steady"], 100_000);
    const from = Date.now() - 3_600_000;

    const { page, errors } = await visit(`/channels/${channel}`);
    const legend = page.locator("#channel-chart figcaption");
    await legend.waitFor();
    const logs = { busy: await attemptsOf("busy"), steady: await attemptsOf("steady") };
    // Both hold every request (the isolate's ledger writes ten records to an entry): busy's
    // 1,150, as many as a log may keep when it holds fewer per entry, so the page cannot tell
    // that none was trimmed; steady's 115.
    expect(logs.busy.length).toBe(1150);
    expect(logs.steady.length).toBe(115);
    const hour = [...logs.busy, ...logs.steady].filter((a) => Date.parse(a.at) >= from);
    const delivered = hour.filter((a) => a.error === null).length;
    const failed = hour.length - delivered;
    expect(delivered).toBeGreaterThan(0);
    expect(failed).toBeGreaterThan(0);
    expect(await legend.locator("[data-delivered]").getAttribute("data-delivered")).toBe(
      String(delivered),
    );
    expect(await legend.locator("[data-failed]").getAttribute("data-failed")).toBe(String(failed));
    expect(await legend.locator(".delivered").textContent()).toBe(
      `■ ${delivered.toLocaleString("en-US")} delivered`,
    );
    // busy's log starts within the hour and may have lost older ones, so the page says since
    // when it counts busy's requests.
    const short = page.locator("#chart-short [data-short-since]");
    expect(await short.allTextContents()).toEqual(["busy"]);
    // Since the earliest start the log holds: records go in as requests end, several in flight
    // at once, so that is not always the last record.
    const earliest = Math.min(...logs.busy.map((a) => Date.parse(a.at)));
    expect(await short.getAttribute("data-short-since")).toBe(new Date(earliest).toISOString());
    await page.screenshot({ path: `${WORKER_BUILD_DIR}.dashboard-chart.png`, fullPage: true });
    expect(errors).toEqual([]);
  }, 120_000);

  it("publishes a test message from its form", async () => {
    await publish(stack, channel, [{ data: 0 }]);
    const { page } = await visit(`/channels/${channel}`);
    await page
      .locator("form#publish textarea[name=data]")
      .fill('{"orderId": 42, "note": "<b>hi</b>"}');
    await page.locator("form#publish input[name=type]").fill("order.created");
    await page.locator("form#publish button[type=submit]").click();
    await expect.poll(() => page.locator("#notice").textContent()).toBe("Published.");
    const { messages } = await json<{ messages: { type: string | null; data: unknown }[] }>(
      `/v1/channels/${channel}/messages`,
    );
    expect(messages.slice(1)).toEqual([
      expect.objectContaining({ type: "order.created", data: { orderId: 42, note: "<b>hi</b>" } }),
    ]);
    // The page shows the new length by itself, and the form is empty for the next one.
    await expect.poll(() => shown(fact(page, "Messages"))).toBe("2");
    expect(await page.locator("form#publish textarea[name=data]").inputValue()).toBe("");
  });

  it("publishes nothing when the data is not JSON, and says so", async () => {
    await publish(stack, channel, [{ data: 0 }]);
    const { page } = await visit(`/channels/${channel}`);
    await page.locator("form#publish textarea[name=data]").fill("{not json");
    await page.locator("form#publish button[type=submit]").click();
    await expect.poll(() => page.locator("#notice").textContent()).toContain("Not valid JSON");
    expect((await json<ChannelJson>(`/v1/channels/${channel}`)).length).toBe(1);
    expect(await page.locator("form#publish textarea[name=data]").inputValue()).toBe("{not json");
  });

  it("updates by itself every few seconds without losing what is being typed", async () => {
    await publish(stack, channel, [{ data: 0 }]);
    const { page } = await visit(`/channels/${channel}`, { refreshMs: 500 });
    const data = page.locator("form#publish textarea[name=data]");
    await data.fill('{"half": "typ');
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await expect.poll(() => shown(fact(page, "Messages")), { timeout: 5000 }).toBe("3");
    expect(await data.inputValue()).toBe('{"half": "typ');
    expect(await data.evaluate((el) => el === document.activeElement)).toBe(true);
  });
});

describe("the subscription page", () => {
  it("pauses and resumes the subscription", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const { page, errors } = await visit(subPath("sub"));
    await page.getByRole("button", { name: "Pause" }).click();
    await expect.poll(async () => (await getSubscription(stack, channel, "sub")).paused).toBe(true);
    await page.getByRole("button", { name: "Resume" }).waitFor();
    expect(await page.locator("#sub-title [data-status]").textContent()).toBe("paused");

    await page.getByRole("button", { name: "Resume" }).click();
    await expect
      .poll(async () => (await getSubscription(stack, channel, "sub")).paused)
      .toBe(false);
    await page.getByRole("button", { name: "Pause" }).waitFor();
    expect(await page.locator("#sub-title [data-status]").textContent()).toBe("active");
    expect(errors).toEqual([]);
  });

  it("redrives one dead letter, which is then delivered, and leaves the others", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 503 });
    const [id, other] = await publish(stack, channel, [{ data: { n: 1 }, type: "t" }, { data: 2 }]);
    await runPass(stack);
    expect((await getSubscription(stack, channel, "sub")).deadLetters).toBe(2);

    const { page } = await visit(subPath("sub"));
    const row = page.locator(`tr[data-dead-letter="${id}"]`);
    expect(await cell(row, "Last error").textContent()).toBe("HTTP 503");
    expect(await shown(cell(row, "Attempts"))).toBe("1");
    receiver.respond({ status: 204 });
    await row.getByRole("button", { name: "Redrive" }).click();
    await expect
      .poll(async () => (await getSubscription(stack, channel, "sub")).deadLetters)
      .toBe(1);
    await deliverUntil(stack, channel, () => receiver.acceptedIds().includes(id!), "redriven");
    expect(receiver.acceptedIds()).toEqual([id]);
    await row.waitFor({ state: "detached" });
    expect(await page.locator("tr[data-dead-letter]").count()).toBe(1);
    expect(await page.locator(`tr[data-dead-letter="${other}"]`).count()).toBe(1);
  });

  // Redrive works for pull subscriptions too: the message is pulled again, at attempt 1.
  it("redrives a pull subscription's dead letter, which is then pulled again", async () => {
    await subscribe(stack, channel, { name: "work", mode: "pull", maxAttempts: 1 });
    const [id] = await publish(stack, channel, [{ data: { n: 1 } }]);
    const pull = async () => {
      const res = await stack.post(`/v1/channels/${channel}/subscriptions/work/pull`, { max: 10 });
      expect(res.status).toBe(200);
      return ((await res.json()) as { messages: { id: string; redrivenFrom?: string }[] }).messages;
    };
    expect((await pull()).map((m) => m.id)).toEqual([id]);
    const nack = await stack.post(`/v1/channels/${channel}/subscriptions/work/nack`, { ids: [id] });
    expect(nack.status).toBe(200);
    expect(await pull()).toEqual([]); // the look after the nack parks it: maxAttempts 1
    expect((await getSubscription(stack, channel, "work")).deadLetters).toBe(1);

    const { page } = await visit(subPath("work"));
    const row = page.locator(`tr[data-dead-letter="${id}"]`);
    await row.getByRole("button", { name: "Redrive" }).click();
    await expect
      .poll(async () => (await getSubscription(stack, channel, "work")).deadLetters)
      .toBe(0);
    expect((await pull()).map((m) => m.redrivenFrom)).toEqual([id]);
  });

  it("purges the dead letters", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await runPass(stack);
    const { page } = await visit(subPath("sub"));
    await page.locator("tr[data-dead-letter]").first().waitFor();
    expect(await page.locator("tr[data-dead-letter]").count()).toBe(2);
    await page.getByRole("button", { name: "Purge all" }).click();
    await expect
      .poll(async () => (await getSubscription(stack, channel, "sub")).deadLetters)
      .toBe(0);
    await page.locator("#sub-dead-letters").getByText("None.").waitFor();
  });

  it("shows a message's data as text, never as markup", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    // No quotes: JSON would escape them, and a broken attribute would hide an injection.
    const markup = "<img src=x id=injected><script>window.injected = 1</script>";
    await publish(stack, channel, [{ data: { markup } }]);
    await runPass(stack);
    const { page, errors } = await visit(subPath("sub"));
    const data = page.locator("tr[data-dead-letter] td[data-label=Data] pre");
    await data.waitFor({ state: "attached" });
    expect(JSON.parse((await data.textContent())!)).toEqual({ markup });
    expect(await page.locator("#injected").count()).toBe(0);
    expect(await page.evaluate(() => "injected" in window)).toBe(false);
    expect(errors).toEqual([]);
  });

  it("rotates the secret and shows the new one once, which then signs", async () => {
    const { secret: old } = await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const { page } = await visit(subPath("sub"));
    await page.getByRole("button", { name: "Rotate secret" }).click();
    await page.locator("#secret").waitFor({ state: "visible" });
    const fresh = (await page.locator("#secret-value").textContent())!;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(old);
    receiver.setSecret(fresh);
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    expect(receiver.requests.map((r) => r.verified)).toEqual([true]);

    await page.getByRole("button", { name: "I have copied it" }).click();
    expect(await page.locator("#secret").isVisible()).toBe(false);
    await page.reload();
    await page.locator("#sub-delivery").waitFor();
    expect(await page.content()).not.toContain(fresh);
  });

  it("leaves no rotated secret on screen after signing out", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const { page } = await visit(subPath("sub"));
    await page.getByRole("button", { name: "Rotate secret" }).click();
    await page.locator("#secret").waitFor({ state: "visible" });
    const fresh = (await page.locator("#secret-value").textContent())!;
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#signin").waitFor({ state: "visible" });
    expect(await page.locator("#secret").isVisible()).toBe(false);
    expect(await page.content()).not.toContain(fresh);
  });

  it("replays from the earliest message", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url });
    const ids = await publish(stack, channel, [{ data: 1 }, { data: 2 }]);
    await runPass(stack);
    expect(receiver.messages().map((m) => m.id)).toEqual(ids);
    const { page } = await visit(subPath("sub"));
    await page.locator("form#replay input[name=from]").fill("earliest");
    await page.locator("form#replay button[type=submit]").click();
    await expect.poll(() => page.locator("#notice").textContent()).toBe("Replaying.");
    await deliverUntil(stack, channel, () => receiver.messages().length === 4, "replayed");
    expect(receiver.messages().map((m) => m.id)).toEqual([...ids, ...ids]);
  });

  it("lists its recent requests as GET .../attempts does: status, messages, error, and the answer as text", async () => {
    // One request at a time: the receiver answers in arrival order, the log in order of ending.
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 2,
      maxAttempts: 1,
      timeoutMs: 400,
      maxConcurrency: 1,
    });
    // No quotes in the markup: a broken attribute would hide an injection.
    const markup =
      "<img src=x id=injected>upstream <b>down</b><script>window.injected = 1</script>";
    const replies: Reply[] = [
      { status: 200, body: "thanks" },
      { status: 503, body: markup },
      { status: 204 },
      { status: 200, body: "too late", delayMs: 1500 },
      { status: 400, body: { error: "bad order" } },
    ];
    receiver.respond((req) => replies[(req.n - 1) % replies.length]!);
    await publish(
      stack,
      channel,
      Array.from({ length: 10 }, (_, n) => ({ data: n })),
    );
    await deliverAll(["sub"]);

    const { page, errors } = await visit(subPath("sub"));
    const rows = page.locator("#sub-attempts tr[data-attempt]");
    await rows.first().waitFor();
    const api = await attemptsOf("sub");
    expect(api.map((a) => a.status)).toEqual([400, "timeout", 204, 503, 200]);
    expect(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.attempt))).toEqual(
      api.map((a) => a.id),
    );
    for (const attempt of api) {
      const row = page.locator(`tr[data-attempt="${attempt.id}"]`);
      expect(await shown(cell(row, "When"))).toBe(attempt.at);
      expect(await cell(row, "Status").textContent()).toBe(String(attempt.status));
      expect(await shown(cell(row, "Messages"))).toBe(String(attempt.messages));
      expect(await cell(row, "Messages").locator(".ids").textContent()).toBe(
        `${attempt.firstId} … ${attempt.lastId}`,
      );
      expect(await shown(cell(row, "Attempt"))).toBe(String(attempt.attempt));
      expect(await shown(cell(row, "Duration"))).toBe(String(attempt.durationMs));
      expect(await cell(row, "Error").textContent()).toBe(attempt.error ?? "—");
      const answer = cell(row, "Answer").locator("pre");
      if (attempt.body === "") expect(await answer.count()).toBe(0);
      else expect(await answer.textContent()).toBe(attempt.body);
    }
    expect(api[1]!.error).toMatch(/timeout/);
    expect(api[3]!.body).toBe(markup);
    expect(await page.locator("#injected").count()).toBe(0);
    expect(await page.evaluate(() => "injected" in window)).toBe(false);
    expect(errors).toEqual([]);
  });

  it("keeps an opened answer open while the page refreshes", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 503, body: "upstream unavailable" });
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const { page } = await visit(subPath("sub"), { refreshMs: 500 });
    const answer = page.locator("#sub-attempts tr[data-attempt] details").first();
    await answer.locator("summary").click();
    expect(await answer.locator("pre").isVisible()).toBe(true);
    // A new request shows after a refresh: the opened answer is still open in the new copy.
    await publish(stack, channel, [{ data: 2 }]);
    await runPass(stack);
    await expect.poll(() => page.locator("#sub-attempts tr[data-attempt]").count()).toBe(2);
    const opened = page.locator("#sub-attempts details[open] pre");
    expect(await opened.allTextContents()).toEqual(["upstream unavailable"]);
    expect(await page.locator("#sub-attempts details").count()).toBe(2);
  });

  it("shows the subscription's delivery and settings as the API does", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      batchSize: 7,
      types: ["order.*"],
      maxRequestsPerSecond: 20,
      maxConcurrency: 4,
      flowKey: "api.example.com",
      flowParallelism: 2,
    });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1, type: "order.created" }]);
    await runPass(stack);
    const { page } = await visit(subPath("sub"));
    await page.locator("#sub-settings").waitFor();
    const api = await getSubscription(stack, channel, "sub");
    expect(await shown(fact(page, "Pending"))).toBe(String(api.pending));
    expect(await shown(fact(page, "Lag"))).toBe(String(api.lag));
    expect(await shown(fact(page, "Failures in a row"))).toBe(String(api.consecutiveFailures));
    // The window of requests in flight (adaptive), of maxConcurrency.
    const [now, max] = await fact(page, "Concurrency now").locator("data").all();
    expect(await now!.getAttribute("value")).toBe(String(api.currentConcurrency));
    expect(await max!.getAttribute("value")).toBe(String(api.maxConcurrency));
    expect(await shown(fact(page, "Next attempt"))).toBe(api.nextAttemptAt);
    expect(await shown(fact(page, "Last error at"))).toBe(api.lastErrorAt);
    expect(await fact(page, "Last error").textContent()).toBe(api.lastError);
    expect(await fact(page, "URL").textContent()).toBe(api.url);
    expect(await shown(fact(page, "Batch size"))).toBe(String(api.batchSize));
    expect(await shown(fact(page, "Max requests per second"))).toBe(
      String(api.maxRequestsPerSecond),
    );
    expect(await shown(fact(page, "Max concurrency"))).toBe(String(api.maxConcurrency));
    expect(await fact(page, "Flow key").textContent()).toBe(api.flowKey);
    expect(await shown(fact(page, "Flow parallelism"))).toBe(String(api.flowParallelism));
    // No rate under the key: said in words, with no value.
    expect(api.flowRate).toBeNull();
    expect(await fact(page, "Flow rate per second").textContent()).toBe("none");
    expect(await fact(page, "Types").textContent()).toBe("order.*");
    expect(await page.locator("#sub-title [data-status]").textContent()).toBe(api.status);
    await page.screenshot({
      path: `${WORKER_BUILD_DIR}.dashboard-subscription.png`,
      fullPage: true,
    });
  });
});

describe("an ordered subscription's page", () => {
  it("shows the keys held back, behind which message and since when, as the API does", async () => {
    await subscribe(stack, channel, {
      name: "sub",
      url: receiver.url,
      ordered: true,
      batchSize: 1,
    });
    const ids = await publish(stack, channel, [
      { data: 1, orderingKey: "held" },
      { data: 2, orderingKey: "held" },
      { data: 3, orderingKey: "free" },
    ]);
    receiver.respond((req) =>
      req.body?.messages.some((m) => m.id === ids[0]) ? { status: 500 } : { status: 204 },
    );
    await runPass(stack);
    const api = await getSubscription(stack, channel, "sub");
    const held = api.heldKeys as { orderingKey: string; messageId: string; since: string }[];
    expect(held.map((h) => [h.orderingKey, h.messageId])).toEqual([["held", ids[0]]]);
    const { page, errors } = await visit(subPath("sub"));
    const row = page.locator('#sub-held-keys tr[data-held-key="held"]');
    await row.waitFor();
    expect(await page.locator("#sub-held-keys tr[data-held-key]").count()).toBe(1);
    expect(await cell(row, "Ordering key").textContent()).toBe("held");
    expect(await cell(row, "Behind message").textContent()).toBe(held[0]!.messageId);
    expect(await shown(cell(row, "Since"))).toBe(held[0]!.since);
    expect(await shown(cell(row, "Waiting"))).toBe("1");
    expect(await fact(page, "Ordered").textContent()).toBe("yes");
    // The failed request in the attempt log, holding its key behind its message.
    const failed = page.locator('#sub-attempts [data-held] code[data-held-key="held"]');
    expect(await failed.textContent()).toBe("held");
    expect(await page.locator("#sub-attempts [data-held]").count()).toBe(1);
    expect(errors).toEqual([]);
  });
});

describe("the schedules page", () => {
  it("shows each schedule's channel, cron, time zone, next and last run and state as the API does", async () => {
    const ran = await createSchedule(stack, {
      name: `${channel}-ran`,
      channel,
      cron: "*/5 * * * *",
      timezone: "America/New_York",
      message: { data: 1 },
    });
    await fireCron(stack, Date.parse(ran.nextRunAt!));
    await createSchedule(stack, {
      name: `${channel}-paused`,
      channel,
      cron: "0 9 * * 1-5",
      message: { data: 2 },
      paused: true,
    });
    const { page, errors } = await visit("/schedules");
    await page.locator(`tr[data-schedule="${channel}-paused"]`).waitFor();
    await page.screenshot({ path: `${WORKER_BUILD_DIR}.dashboard-schedules.png` });
    for (const name of [`${channel}-ran`, `${channel}-paused`]) {
      const api = await json<ScheduleJson>(`/v1/schedules/${name}`);
      const row = page.locator(`tr[data-schedule="${name}"]`);
      expect(await cell(row, "Name").textContent()).toBe(api.name);
      expect(await cell(row, "Channel").locator("a").getAttribute("href")).toBe(
        `/dashboard/channels/${channel}`,
      );
      expect(await cell(row, "Cron").textContent()).toBe(api.cron);
      expect(await cell(row, "Time zone").textContent()).toBe(api.timezone);
      expect(await shown(cell(row, "Next run"))).toBe(api.nextRunAt);
      expect(await shown(cell(row, "Last run"))).toBe(api.lastRunAt);
      expect(await cell(row, "State").textContent()).toBe(api.paused ? "paused" : "active");
    }
    const ran2 = await json<ScheduleJson>(`/v1/schedules/${channel}-ran`);
    expect(ran2.lastRunAt).toBe(ran.nextRunAt); // the page showed a last run, not a dash
    await page.locator("header a", { hasText: "Channels" }).click();
    await page.locator(`tr[data-channel="${channel}"]`).waitFor();
    expect(errors).toEqual([]);
  });

  it("pauses, resumes and deletes a schedule", async () => {
    const name = `${channel}-s`;
    await createSchedule(stack, { name, channel, cron: "* * * * *", message: { data: 1 } });
    const { page, errors } = await visit("/schedules");
    const row = page.locator(`tr[data-schedule="${name}"]`);
    await row.getByRole("button", { name: "Pause" }).click();
    await expect
      .poll(async () => (await json<ScheduleJson>(`/v1/schedules/${name}`)).paused)
      .toBe(true);
    await row.getByRole("button", { name: "Resume" }).click();
    await expect
      .poll(async () => (await json<ScheduleJson>(`/v1/schedules/${name}`)).nextRunAt)
      .not.toBeNull();
    await row.getByRole("button", { name: "Delete" }).click();
    await expect.poll(async () => (await stack.api(`/v1/schedules/${name}`)).status).toBe(404);
    await row.waitFor({ state: "detached" });
    expect(errors).toEqual([]);
  });

  it("lists only the schedules of a key's channels, without buttons for a reader", async () => {
    await createSchedule(stack, {
      name: `${channel}-mine`,
      channel,
      cron: "@daily",
      message: { data: 1 },
    });
    await createSchedule(stack, {
      name: `${channel}-theirs`,
      channel: `${channel}-other`,
      cron: "@daily",
      message: { data: 1 },
    });
    const key = await createKey(stack, {
      name: "schedule-reader",
      scopes: ["read"],
      channels: [channel],
    });
    const { page } = await visit("/schedules", { key: key.secret });
    await page.locator(`tr[data-schedule="${channel}-mine"]`).waitFor();
    expect(await page.locator(`tr[data-schedule="${channel}-theirs"]`).count()).toBe(0);
    expect(await page.locator("main button, main [data-api-path]").count()).toBe(0);
  });
});

describe("a key with only the read scope", () => {
  it("sees no button or form that would change anything", async () => {
    await subscribe(stack, channel, { name: "sub", url: receiver.url, maxAttempts: 1 });
    receiver.respond({ status: 500 });
    await publish(stack, channel, [{ data: 1 }]);
    await runPass(stack);
    const key = await createKey(stack, { name: "reader", scopes: ["read"] });
    const reader = await visit("", { key: key.secret });
    await reader.page.locator(`tr[data-channel="${channel}"]`).waitFor();
    for (const path of [`/channels/${channel}`, subPath("sub")]) {
      await reader.page.goto(`${stack.url}/dashboard${path}`);
      await reader.page.locator("main h1").waitFor();
      expect(await reader.page.locator("main [data-api-path]").count()).toBe(0);
      expect(await reader.page.locator("main button, main form").count()).toBe(0);
    }
    expect(await reader.page.locator("#sub-dead-letters").textContent()).toContain(
      "1 dead letters. Listing them needs the subscribe scope.",
    );

    // The same pages offer them to a key that may use them: the test would see them.
    const admin = await visit(subPath("sub"));
    await admin.page.locator("#sub-dead-letters tr[data-dead-letter]").waitFor();
    expect(await admin.page.locator("main [data-api-path]").count()).toBeGreaterThan(3);
  });
});

describe("on a phone", () => {
  it("needs no horizontal scrolling at 390 px wide", async () => {
    const long = `${channel}-${"a-very-long-channel-name-".repeat(4)}end`.slice(0, 128);
    await subscribe(stack, long, {
      name: `subscriber-${"with-a-long-name-".repeat(5)}`.slice(0, 100),
      url: `${receiver.url}?${"query=long&".repeat(30)}`,
      maxAttempts: 1,
    });
    receiver.respond({ status: 500, body: "x".repeat(2000) });
    await publish(stack, long, [
      { data: { long: "y".repeat(500) }, type: "type.with.a.long.name" },
    ]);
    await runPass(stack);
    const { subscriptions } = await json<{ subscriptions: { name: string }[] }>(
      `/v1/channels/${long}/subscriptions`,
    );
    const name = subscriptions[0]!.name;
    await createSchedule(stack, {
      name: `${channel}-${"schedule-with-a-long-name-".repeat(4)}`.slice(0, 128),
      channel: long,
      cron: "*/15 8-18 * * MON-FRI",
      timezone: "America/Argentina/ComodRivadavia",
      message: { data: 1 },
    });
    const { page } = await visit("", { width: 390 });
    const paths = [
      "",
      `/channels/${long}`,
      `/channels/${long}/subscriptions/${name}`,
      "/schedules",
    ];
    for (const path of paths) {
      await page.goto(`${stack.url}/dashboard${path}`);
      await page.locator("main h1").waitFor();
      await page.locator("main [data-live]").first().waitFor();
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      expect(overflow, `${path || "/"} is wider than the screen`).toBe(0);
    }
    await page.screenshot({ path: `${WORKER_BUILD_DIR}.dashboard-phone.png`, fullPage: true });
  });
});
