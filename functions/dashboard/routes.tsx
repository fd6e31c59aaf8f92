// GET /dashboard: the dashboard, served by the Worker itself. Not API routes (HTML, left out of
// the OpenAPI document):
//
//   /dashboard, /dashboard/channels/{channel}, .../subscriptions/{name}, /dashboard/schedules
//                               the shell page (shell.tsx), the same for every page and every key
//   /dashboard/app.js, /dashboard/style.css
//                               the client (client.ts) and the stylesheet
//   /dashboard/fragments/...    each page's content as an HTML fragment, for the bearer token's
//                               key: 401 without a valid one, 403 outside its scopes or channels
//
// A fragment (fragments.tsx) reads what the JSON API would answer with the same functions its
// routes use, and renders buttons and forms only for calls the key's scopes allow. Every answer
// carries a strict Content-Security-Policy: scripts and styles from this origin only, nothing
// inline. No cookie is involved (the key is a bearer token), so there is nothing for CSRF.

import type { MiddlewareHandler } from "hono";
import { Hono } from "hono";
import { etag } from "hono/etag";
import { secureHeaders } from "hono/secure-headers";
import { allow, authenticate, rateLimit } from "../auth.ts";
import type { AppEnv } from "../types.ts";
import { CLIENT_JS } from "./client.ts";
import {
  channelFragment,
  channelsFragment,
  schedulesFragment,
  subscriptionFragment,
} from "./fragments.tsx";
import { Shell } from "./shell.tsx";
import { STYLE_CSS } from "./style.ts";

const DEFAULT_REFRESH_MS = 5000;
// A browser asks for an icon on every page; this one spares it a 404.
const ICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0b5cad"/><path d="M3 5h10M3 8h7M3 11h4" stroke="#fff" stroke-width="1.6"/></svg>';

// default-src none: whatever is not allowed below (fonts, frames, objects) is refused.
const strictHeaders = secureHeaders({
  contentSecurityPolicy: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'"],
    imgSrc: ["'self'"],
    connectSrc: ["'self'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
    baseUri: ["'none'"],
  },
  referrerPolicy: "no-referrer",
});

/** Fragments hold what the key may read: never stored by a cache. */
const noStore: MiddlewareHandler = async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
};

export function dashboardRoutes() {
  const app = new Hono<AppEnv>();
  app.use("/dashboard", strictHeaders);
  app.use("/dashboard/*", strictHeaders);
  // As on /v1: 401, then 429 (a fragment counts as one request of the key), then 403 per route.
  app.use("/dashboard/fragments/*", noStore, authenticate(), rateLimit());

  const page = (refresh: string | undefined) => {
    const ms = Number(refresh);
    // ?refreshMs= (500 to 60000) for tests and the screenshot; else every 5 s.
    const refreshMs = Number.isInteger(ms) && ms >= 500 && ms <= 60_000 ? ms : DEFAULT_REFRESH_MS;
    return `<!doctype html>${(<Shell refreshMs={refreshMs} />).toString()}`;
  };
  for (const path of [
    "/dashboard",
    "/dashboard/channels/:channel",
    "/dashboard/channels/:channel/subscriptions/:name",
    "/dashboard/schedules",
  ]) {
    app.get(path, (c) => c.html(page(c.req.query("refreshMs"))));
  }

  app.use("/dashboard/app.js", etag());
  app.get("/dashboard/app.js", (c) =>
    c.body(CLIENT_JS, 200, { "Content-Type": "text/javascript; charset=utf-8" }),
  );
  app.get("/dashboard/icon.svg", (c) =>
    c.body(ICON_SVG, 200, { "Content-Type": "image/svg+xml", "Cache-Control": "max-age=86400" }),
  );
  app.use("/dashboard/style.css", etag());
  app.get("/dashboard/style.css", (c) =>
    c.body(STYLE_CSS, 200, { "Content-Type": "text/css; charset=utf-8" }),
  );

  app.get("/dashboard/fragments/channels", allow("read"), channelsFragment);
  app.get("/dashboard/fragments/channels/:channel", allow("read"), channelFragment);
  app.get(
    "/dashboard/fragments/channels/:channel/subscriptions/:name",
    allow("read"),
    subscriptionFragment,
  );
  app.get("/dashboard/fragments/schedules", allow("read"), schedulesFragment);

  return app;
}
