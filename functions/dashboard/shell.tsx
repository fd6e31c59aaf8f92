// The one HTML page every dashboard URL serves: the frame, the sign-in form and an empty <main>
// that the client (client.ts) fills with the page's fragment. Nothing here depends on who is
// signed in, so it needs no key.

export const Shell = (props: { refreshMs: number }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width, initial-scale=1" />
      <meta name="referrer" content="no-referrer" />
      <title>streamhook</title>
      <link rel="icon" href="/dashboard/icon.svg" type="image/svg+xml" />
      <link rel="stylesheet" href="/dashboard/style.css" />
      <script src="/dashboard/app.js" defer />
    </head>
    <body data-refresh-ms={props.refreshMs}>
      <header class="top">
        <a class="brand" href="/dashboard">
          streamhook
        </a>
        <nav class="sections">
          <a href="/dashboard">Channels</a>
          <a href="/dashboard/schedules">Schedules</a>
        </nav>
        <span class="spacer" />
        <button id="signout" type="button" class="secondary" hidden>
          Sign out
        </button>
      </header>
      <div class="shell-messages">
        <p id="notice" role="status" hidden />
        <div id="secret" role="alert" hidden>
          <strong>The new signing secret, shown only now:</strong>
          <code id="secret-value" />
          <button id="secret-dismiss" type="button" class="secondary">
            I have copied it
          </button>
        </div>
        <form id="signin" hidden>
          <h1>Sign in</h1>
          <p class="hint">
            Paste an API key (or the API_TOKEN). It stays in this tab only (sessionStorage) and is
            sent as a bearer token; what the dashboard shows and offers follows its scopes.
          </p>
          <label>
            API key
            <input name="key" type="password" autocomplete="off" required />
          </label>
          <p id="signin-message" role="alert" />
          <button type="submit">Sign in</button>
        </form>
      </div>
      <main id="main" />
    </body>
  </html>
);
