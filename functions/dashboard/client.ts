// The dashboard's client, served as /dashboard/app.js: plain JavaScript, no framework, no build
// step. It signs in (the API key lives in sessionStorage and goes out as a bearer token: no
// cookie, so no CSRF), loads the page's server-rendered fragment (/dashboard/fragments/...),
// refreshes its live regions every few seconds while the tab is visible, and makes the API calls
// the page's buttons and forms carry (parts.tsx: data-api-method, data-api-path, data-api-body).
//
// It is a string here because the Worker serves it: a .js file would need a bundler rule in
// wrangler and a loader in vitest. It must therefore hold no backtick and no dollar-brace; the
// browser tests (test/functions/dashboard.test.ts) run it in a real Chromium.

export const CLIENT_JS = String.raw`
"use strict";
(() => {
  const KEY = "streamhook.key";
  const main = document.getElementById("main");
  const signin = document.getElementById("signin");
  const signinMessage = document.getElementById("signin-message");
  const signout = document.getElementById("signout");
  const notice = document.getElementById("notice");
  const secretBox = document.getElementById("secret");
  const secretValue = document.getElementById("secret-value");
  const refreshMs = Math.max(500, Number(document.body.dataset.refreshMs) || 5000);
  const rest = location.pathname.replace(/^\/dashboard\/?/, "/").replace(/\/$/, "");
  const fragment = "/dashboard/fragments" + (rest === "" ? "/channels" : rest);

  let timer = 0;
  let busy = false;

  const key = () => sessionStorage.getItem(KEY);

  // One line of news: what an action did, or what went wrong. "from" says who wrote it, so a
  // refresh that works again clears its own error and nothing else.
  function say(text, kind, from) {
    notice.textContent = text;
    notice.className = kind;
    notice.dataset.from = from || "action";
    notice.hidden = text === "";
  }

  function showSignIn(message) {
    clearTimeout(timer);
    sessionStorage.removeItem(KEY);
    main.replaceChildren();
    // Nothing of the signed-out session stays on screen: a rotated secret, the last notice.
    secretValue.textContent = "";
    secretBox.hidden = true;
    say("", "ok");
    signin.hidden = false;
    signout.hidden = true;
    signinMessage.textContent = message || "";
    signin.elements.key.focus();
  }

  // The API's {"error":{"code","message"}}, or the status when the answer is not one.
  async function errorOf(res) {
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch {
      // not JSON: say the status
    }
    return "HTTP " + res.status;
  }

  function request(method, path, body) {
    const headers = { authorization: "Bearer " + key() };
    if (body !== undefined) headers["content-type"] = "application/json";
    return fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  }

  // Live regions ([data-live] with an id) are replaced by their new copies, <details data-key>
  // open as they were; everything else, forms being typed into first, stays as it is. A page
  // whose set of regions changed is replaced whole.
  function swap(html) {
    const next = document.createElement("template");
    next.innerHTML = html;
    const ids = (root) => Array.from(root.querySelectorAll("[data-live]"), (el) => el.id).join();
    // What was opened to be read (an answer's body, a message's data) stays open in the new copy.
    const opened = Array.from(main.querySelectorAll("details[open][data-key]"), (el) => el.dataset.key);
    for (const details of next.content.querySelectorAll("details[data-key]")) {
      if (opened.includes(details.dataset.key)) details.open = true;
    }
    if (main.childElementCount === 0 || ids(main) !== ids(next.content)) {
      main.replaceChildren(next.content);
      return;
    }
    for (const fresh of next.content.querySelectorAll("[data-live]")) {
      document.getElementById(fresh.id).replaceWith(fresh);
    }
  }

  async function load() {
    clearTimeout(timer);
    if (!key()) return showSignIn("");
    busy = true;
    try {
      const res = await request("GET", fragment);
      if (res.status === 401) return showSignIn("That key was refused (401): sign in again.");
      if (!res.ok) {
        say(await errorOf(res), "error", "load");
      } else {
        signin.hidden = true;
        signout.hidden = false;
        swap(await res.text());
        if (notice.dataset.from === "load") say("", "ok");
      }
    } catch (error) {
      say("Could not reach the Worker: " + error.message, "error", "load");
    } finally {
      busy = false;
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (key() && !document.hidden) timer = setTimeout(load, refreshMs);
  }

  async function act(method, path, body, element) {
    const question = element.dataset.confirm;
    if (question && !confirm(question)) return;
    const control = element.tagName === "FORM" ? element.querySelector("button") : element;
    control.disabled = true;
    try {
      const res = await request(method, path, body);
      if (res.status === 401) return showSignIn("That key was refused (401): sign in again.");
      if (!res.ok) return say(await errorOf(res), "error");
      const answer = res.status === 204 ? null : await res.json();
      if ("showsSecret" in element.dataset && answer && answer.secret) {
        secretValue.textContent = answer.secret;
        secretBox.hidden = false;
      }
      say(element.dataset.done || "Done.", "ok");
      if (element.tagName === "FORM") element.reset();
    } catch (error) {
      say("Could not reach the Worker: " + error.message, "error");
    } finally {
      control.disabled = false;
    }
    await load();
  }

  // A form's named fields as the body: empty ones left out, data-json ones parsed.
  function bodyOf(form) {
    const body = {};
    for (const field of form.elements) {
      if (!field.name || field.value.trim() === "") continue;
      body[field.name] = "json" in field.dataset ? JSON.parse(field.value) : field.value.trim();
    }
    return body;
  }

  signin.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, signin.elements.key.value.trim());
    signin.reset();
    load();
  });

  signout.addEventListener("click", () => showSignIn("Signed out."));

  document.getElementById("secret-dismiss").addEventListener("click", () => {
    secretValue.textContent = "";
    secretBox.hidden = true;
  });

  main.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-api-path]");
    if (!button) return;
    const body = button.dataset.apiBody;
    act(
      button.dataset.apiMethod,
      button.dataset.apiPath,
      body === undefined ? undefined : JSON.parse(body),
      button,
    );
  });

  main.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-api-path]");
    if (!form) return;
    event.preventDefault();
    let body;
    try {
      body = bodyOf(form);
    } catch (error) {
      return say("Not valid JSON: " + error.message, "error");
    }
    act(form.dataset.apiMethod, form.dataset.apiPath, body, form);
  });

  document.addEventListener("visibilitychange", () => {
    if (document.hidden) clearTimeout(timer);
    else if (!busy) load();
  });

  load();
})();
`;
