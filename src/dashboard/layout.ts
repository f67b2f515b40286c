/**
 * The dashboard's page shell (navigation, styles, the one small script)
 * and the helpers every page uses: links under the base path, action forms
 * with their CSRF token, times.
 *
 * @module
 */

import { html, raw } from "hono/html";
import type { HtmlEscapedString } from "hono/utils/html";
import type { PQ } from "../create_pq.ts";

/** Rendered HTML (escaped). */
export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/** What a page renders with. */
export interface PageContext {
  pq: PQ;
  /** The base path, ending with `/`. */
  base: string;
  readOnly: boolean;
  /** The CSRF token of this browser's cookie. */
  csrf: string;
  /** The nonce that lets this response's one inline script run. */
  nonce: string;
  /** The path and query of this page, to come back to after an action. */
  here: string;
}

/** A link under the base path, with query parameters (escaped). */
export function href(
  ctx: PageContext,
  path: string,
  query: Record<string, string | null | undefined> = {},
): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== "") params.set(k, v);
  }
  const q = params.toString();
  return `${ctx.base}${path}${q ? `?${q}` : ""}`;
}

/**
 * A POST form with one button, or nothing on a read-only dashboard.
 * `confirm` asks first (the page's script reads `data-confirm`).
 */
export function action(
  ctx: PageContext,
  path: string,
  label: string,
  fields: Record<string, string> = {},
  confirm?: string,
): Html {
  if (ctx.readOnly) return html``;
  const hidden = Object.entries(fields).map(([k, v]) =>
    html`<input type="hidden" name="${k}" value="${v}">`
  );
  return html`
    <form method="post" class="action" action="${href(ctx, path)}"
      ${confirm
        ? html`data-confirm="${confirm}"`
        : ""}><input type="hidden" name="csrf" value="${ctx
        .csrf}"><input type="hidden" name="back" value="${ctx
        .here}">${hidden}<button type="submit">${label}</button></form>
  `;
}

/** `2026-11-30 04:56:12` (UTC), or `-`. */
export function when(date: Date | null | undefined): string {
  return date ? date.toISOString().replace("T", " ").slice(0, 19) : "-";
}

const STYLE = `
:root { font: 14px/1.4 system-ui, sans-serif; color: #1d2330; background: #f6f7f9; }
body { margin: 0; }
header { background: #1d2330; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.2rem; align-items: center; }
header a { color: #cfd6e4; text-decoration: none; }
header a:hover, header a.on { color: #fff; }
header strong { margin-right: .8rem; }
main { padding: 1rem 1.2rem; }
h1 { font-size: 1.3rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
th { font-weight: 600; background: #eef0f4; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #fff; border: 1px solid #e3e6eb; padding: .6rem; overflow: auto; max-height: 24rem; }
.chart .ok, .depth .ready { fill: #2f9e44; } .chart .bad, .depth .failed { fill: #e03131; }
.depth .scheduled { fill: #74c0fc; } .depth .running { fill: #f59f00; }
.state { padding: 0 .4rem; border-radius: .6rem; background: #e9ecef; }
.state-failed { background: #ffe3e3; } .state-ready { background: #d3f9d8; } .state-running { background: #fff3bf; }
.state-paused { background: #1d2330; color: #fff; font-size: .85em; }
form.action { display: inline; } form.action button { margin-right: .3rem; }
.tabs a { margin-right: .8rem; } .tabs a.on { font-weight: 700; }
.muted { color: #6b7385; } .error { color: #c92a2a; }
.banner { background: #fff3bf; padding: .4rem .8rem; margin-bottom: 1rem; }
`;

/** Confirms forms that ask to; the only script, run under a nonce. */
const SCRIPT = `
document.addEventListener("submit", (event) => {
  const message = event.target.getAttribute("data-confirm");
  if (message && !confirm(message)) event.preventDefault();
});
`;

const NAV: [string, string][] = [
  ["", "Overview"],
  ["failed", "Failed"],
  ["schedules", "Schedules"],
  ["flow", "Flow control"],
];

/** A whole page. */
export function page(
  ctx: PageContext,
  title: string,
  current: string,
  body: Html,
): Html {
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="icon" href="data:,">
        <title>${title} · pq</title>
        <style>${raw(STYLE)}</style>
      </head>
      <body>
        <header><strong>pq · ${ctx.pq.table}</strong>${NAV.map((
          [path, label],
        ) =>
          html`<a href="${href(ctx, path)}" class="${
            path === current ? "on" : ""
          }">${label}</a>`
        )}<span class="muted">${ctx.readOnly ? "read-only" : ""}</span></header>
        <main>${body}</main>
        <script nonce="${ctx.nonce}">${raw(SCRIPT)}</script>
      </body>
    </html>
  `;
}
