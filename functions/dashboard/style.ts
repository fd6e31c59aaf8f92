// The dashboard's stylesheet, served as /dashboard/style.css (the CSP allows no inline style).
// Below 640 px a table's rows become cards, each value under its column's name, so nothing
// scrolls sideways on a phone; long values (URLs, ids, errors) wrap anywhere.

export const STYLE_CSS = `
:root {
  color-scheme: light dark;
  --fg: #1d2125; --muted: #5e6a75; --bg: #fff; --panel: #f5f7f9; --line: #d8dee4;
  --accent: #0b5cad; --ok: #1a7f37; --bad: #c62828; --warn: #9a6700;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root {
    --fg: #e6edf3; --muted: #9aa7b3; --bg: #0d1117; --panel: #161b22; --line: #30363d;
    --accent: #58a6ff; --ok: #3fb950; --bad: #f85149; --warn: #d29922;
  }
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
header.top {
  display: flex; align-items: center; gap: 1rem; padding: .6rem 1rem;
  border-bottom: 1px solid var(--line); background: var(--panel);
}
header.top a.brand { font-weight: 700; color: var(--fg); text-decoration: none; }
header.top .spacer { flex: 1; }
header.top nav.sections { display: flex; gap: .8rem; }
main, .shell-messages { max-width: 1100px; margin: 0 auto; padding: 0 1rem; }
main { padding-bottom: 3rem; }
a { color: var(--accent); }
h1 { font-size: 1.4rem; margin: 1rem 0 .5rem; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
nav.crumbs { margin-top: 1rem; color: var(--muted); overflow-wrap: anywhere; }
p.hint, .muted { color: var(--muted); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .9em; }
td, dd, code, .wrap { overflow-wrap: anywhere; word-break: break-word; }
table { width: 100%; border-collapse: collapse; margin: .5rem 0; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: .85rem; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
/* A long last error would squeeze a name to a letter a line. */
table.rows td[data-label="Name"] { min-width: 7rem; }
dl.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .5rem; margin: .5rem 0; }
dl.facts .item { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .4rem .6rem; min-width: 0; }
dl.facts .item.wide { grid-column: span 2; }
dl.facts dt { font-size: .8rem; color: var(--muted); }
dl.facts dd { margin: 0; font-weight: 600; }
.status { display: inline-block; white-space: nowrap; padding: 0 .45rem; border-radius: 999px; font-size: .85rem; font-weight: 600; border: 1px solid currentColor; }
.status-active { color: var(--ok); }
.status-paused { color: var(--warn); }
.status-failing, .status-disabled { color: var(--bad); }
.error-text { color: var(--bad); }
.ok-text { color: var(--ok); }
.ids { display: block; font-size: .8rem; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; margin: .5rem 0; }
button {
  font: inherit; padding: .35rem .8rem; border-radius: 6px; cursor: pointer;
  border: 1px solid var(--accent); background: var(--accent); color: #fff;
}
button.secondary { background: transparent; color: var(--accent); }
button.danger { border-color: var(--bad); background: transparent; color: var(--bad); }
button:disabled { opacity: .5; cursor: wait; }
form.api-form, form#signin { display: grid; gap: .5rem; max-width: 36rem; margin: .5rem 0; }
label { display: grid; gap: .2rem; font-size: .9rem; color: var(--muted); }
input, textarea {
  font: inherit; width: 100%; padding: .35rem .5rem; color: var(--fg); background: var(--bg);
  border: 1px solid var(--line); border-radius: 6px;
}
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; min-height: 4.5rem; }
#notice { padding: .5rem .75rem; border-radius: 6px; margin: .75rem 0 0; overflow-wrap: anywhere; }
#notice.ok { background: color-mix(in srgb, var(--ok) 15%, transparent); }
#notice.error { background: color-mix(in srgb, var(--bad) 15%, transparent); }
#secret { border: 2px solid var(--warn); border-radius: 6px; padding: .5rem .75rem; margin: .75rem 0 0; }
#secret code { display: block; margin: .4rem 0; user-select: all; }
#signin-message { color: var(--bad); min-height: 1.2em; margin: 0; }
svg.chart { width: 100%; height: auto; max-width: 720px; display: block; }
svg.chart .delivered { fill: var(--ok); }
svg.chart .failed { fill: var(--bad); }
svg.chart .axis { stroke: var(--line); }
svg.chart .uncovered { fill: var(--line); opacity: .4; }
svg.chart text { fill: var(--muted); font-size: 11px; }
.legend { display: flex; gap: 1rem; flex-wrap: wrap; font-size: .9rem; }
.legend .delivered { color: var(--ok); }
.legend .failed { color: var(--bad); }
details summary { cursor: pointer; color: var(--accent); }
pre { white-space: pre-wrap; overflow-wrap: anywhere; margin: .3rem 0; }
[hidden] { display: none !important; }
@media (min-width: 641px) {
  /* An opened answer wraps in its own column instead of squeezing the others. */
  #sub-attempts td[data-label="Answer"] { width: 35%; }
  #sub-attempts td[data-label="When"] { white-space: nowrap; }
}
@media (max-width: 640px) {
  table.rows thead { display: none; }
  table.rows, table.rows tbody, table.rows tr, table.rows td { display: block; width: 100%; }
  table.rows tr { border: 1px solid var(--line); border-radius: 6px; margin: 0 0 .6rem; padding: .3rem .5rem; }
  table.rows td { border: 0; padding: .15rem 0; display: grid; grid-template-columns: 8.5rem minmax(0, 1fr); gap: .5rem; text-align: left; }
  table.rows td::before { content: attr(data-label); color: var(--muted); font-size: .85rem; }
  header.top { flex-wrap: wrap; }
  dl.facts { grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
}
`;
