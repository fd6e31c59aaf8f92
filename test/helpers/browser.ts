// A real headless Chromium for the dashboard's tests and screenshot: Debian's `chromium` (npm test
// installs it like redis-server: dev/bootstrap.mjs), driven by playwright-core, which brings no
// browser of its own. CHROMIUM_PATH points at another binary.

import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
  if (!existsSync(path)) {
    throw new Error(
      `no Chromium at ${path}: install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH`,
    );
  }
  return path;
}

/** Launches headless Chromium; as root it needs --no-sandbox (its sandbox refuses to run). */
export function launchBrowser(): Promise<Browser> {
  const asRoot = process.getuid?.() === 0;
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: asRoot ? ["--no-sandbox"] : [],
  });
}

export interface DashboardPage {
  page: Page;
  context: BrowserContext;
  /** Console errors and page errors so far (a CSP violation shows as one). */
  errors: string[];
  close(): Promise<void>;
}

/**
 * A fresh browser context (its own sessionStorage) on a dashboard URL, signed in with `key` when
 * given. `width` 390 is a phone.
 */
export async function openDashboard(
  browser: Browser,
  url: string,
  options: { key?: string; width?: number; height?: number } = {},
): Promise<DashboardPage> {
  const context = await browser.newContext({
    viewport: { width: options.width ?? 1280, height: options.height ?? 900 },
  });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("dialog", (dialog) => void dialog.accept());
  await page.goto(url);
  if (options.key !== undefined) await signIn(page, options.key);
  return { page, context, errors, close: () => context.close() };
}

/** Types the key into the sign-in form and submits it. */
export async function signIn(page: Page, key: string): Promise<void> {
  await page.locator("#signin input[name=key]").fill(key);
  await page.locator("#signin button[type=submit]").click();
}
