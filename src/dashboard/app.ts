/**
 * The dashboard's routes (Hono): pages are GETs; actions are POSTs that
 * must pass `authorize`, find the dashboard writable, carry the CSRF token
 * of the browser's cookie and come from the same origin. Every response
 * forbids framing and any script but the page's own (a CSP with a nonce),
 * on top of the escaping of every value (Hono's `html` helper).
 *
 * @module
 */

import { type Context, Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { html } from "hono/html";
import { actOnAllFailed, deleteFailed, findJob, queueNamed } from "../admin.ts";
import type { PQ } from "../create_pq.ts";
import { CsrfKey, newCookieValue } from "./csrf.ts";
import { failedPage } from "./failed_page.ts";
import { flowPage } from "./flow_page.ts";
import { jobPage } from "./job_page.ts";
import { type Html, page, type PageContext } from "./layout.ts";
import { overviewPage } from "./overview.ts";
import { queuePage } from "./queue_page.ts";
import { schedulesPage } from "./schedules_page.ts";

/** The dashboard's settings, checked. */
export interface DashboardSettings {
  /** Starts and ends with `/`. */
  base: string;
  readOnly: boolean;
  authorize: (request: Request) => boolean | Promise<boolean>;
}

const COOKIE = "pq_csrf";

/** Builds the Hono app of one dashboard. */
export function dashboardApp(pq: PQ, settings: DashboardSettings): Hono {
  const { base, readOnly, authorize } = settings;
  const csrf = new CsrfKey();
  const app = new Hono({ strict: false });
  const root = base === "/" ? app : app.basePath(base.slice(0, -1));

  /** The page context of a request; sets the browser's cookie if new. */
  const contextOf = async (c: Context): Promise<PageContext> => {
    let cookie = getCookie(c, COOKIE);
    if (!cookie || !/^[0-9a-f]{32}$/.test(cookie)) {
      cookie = newCookieValue();
      setCookie(c, COOKIE, cookie, {
        path: base,
        httpOnly: true,
        sameSite: "Strict",
      });
    }
    const nonce = newCookieValue();
    const url = new URL(c.req.url);
    return {
      pq,
      base,
      readOnly,
      csrf: await csrf.token(cookie),
      nonce,
      here: url.pathname + url.search,
    };
  };

  const render = async (
    c: Context,
    ctx: PageContext,
    body: Html | Promise<Html>,
    status = 200,
  ) => {
    const nonce = ctx.nonce;
    c.header(
      "content-security-policy",
      `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
    );
    c.header("x-content-type-options", "nosniff");
    c.header("referrer-policy", "same-origin");
    c.header("cache-control", "no-store");
    return c.html(await await body, status as 200);
  };

  const problem = async (c: Context, status: number, message: string) => {
    const ctx = await contextOf(c);
    return render(
      c,
      ctx,
      page(
        ctx,
        "Error",
        "",
        html`
          <h1>${status}</h1>
          <p class="error" id="problem">${message}</p>
        `,
      ),
      status,
    );
  };

  app.use("*", async (c, next) => {
    if (!await authorize(c.req.raw)) {
      return c.text("Forbidden: not authorized", 403);
    }
    await next();
  });

  app.onError(async (error, c) => {
    if (error instanceof TypeError || error instanceof RangeError) {
      return await problem(c, 400, error.message);
    }
    console.error("pq dashboard:", error);
    return await problem(c, 500, `Internal error: ${error.message}`);
  });

  /** A GET route that renders a page with the request's context. */
  const show = (
    path: string,
    build: (ctx: PageContext, url: URL) => Promise<Html | null>,
  ) =>
    root.get(path, async (c) => {
      const ctx = await contextOf(c);
      const body = await build(ctx, new URL(c.req.url));
      return body ? render(c, ctx, body) : problem(c, 404, "Not found");
    });

  // Browsers ask for it after a page without one (a refusal's plain text).
  root.get("/favicon.ico", (c) => c.body(null, 204));
  show("/", (ctx) => overviewPage(ctx));
  show("/queue", queuePage);
  show("/failed", failedPage);
  show("/schedules", (ctx) => schedulesPage(ctx));
  show("/flow", (ctx) => flowPage(ctx));
  show("/job", (ctx, url) => jobPage(ctx, url.searchParams.get("id") ?? ""));

  /** Checks an action's request; returns its form, or a refusal. */
  const admit = async (
    c: Context,
  ): Promise<Record<string, string> | Response> => {
    if (readOnly) return c.text("Forbidden: the dashboard is read-only", 403);
    const origin = c.req.header("origin");
    if (origin && origin !== new URL(c.req.url).origin) {
      return c.text("Forbidden: cross-origin request", 403);
    }
    const form = await c.req.parseBody();
    if (!await csrf.check(getCookie(c, COOKIE), form.csrf)) {
      return c.text("Forbidden: bad or missing CSRF token", 403);
    }
    const fields: Record<string, string> = {};
    for (const [k, v] of Object.entries(form)) {
      if (typeof v === "string") fields[k] = v;
    }
    return fields;
  };

  /** Back to the page the form was on, if it is one of ours. */
  const back = (c: Context, fields: Record<string, string>) => {
    const to = fields.back ?? "";
    const safe = to.startsWith(base) && !to.startsWith("//") &&
      !to.includes("\\");
    return c.redirect(safe ? to : base, 303);
  };

  const post = (
    path: string,
    run: (fields: Record<string, string>) => Promise<unknown>,
  ) =>
    root.post(path, async (c) => {
      const fields = await admit(c);
      if (fields instanceof Response) return fields;
      await run(fields);
      return back(c, fields);
    });

  const jobQueue = async (id: string) => {
    const job = await findJob(pq, id);
    if (!job) throw new TypeError(`No job ${JSON.stringify(id)}`);
    return job.queue;
  };
  post(
    "/retry",
    async (f) => await queueNamed(pq, await jobQueue(f.id)).retry(f.id),
  );
  post(
    "/cancel",
    async (f) => await queueNamed(pq, await jobQueue(f.id)).cancel(f.id),
  );
  post(
    "/delete",
    async (f) => await deleteFailed(pq, await jobQueue(f.id), f.id),
  );
  post("/failed/retry", (f) => actOnAllFailed(pq, "retry", f.queue || null));
  post("/failed/delete", (f) => actOnAllFailed(pq, "delete", f.queue || null));
  post(
    "/schedules/pause",
    (f) => queueNamed(pq, f.queue ?? "").pauseSchedule(f.name ?? ""),
  );
  post(
    "/schedules/resume",
    (f) => queueNamed(pq, f.queue ?? "").resumeSchedule(f.name ?? ""),
  );
  // Stored in the table, so the pause holds in every process (and pausing
  // a paused queue, from two tabs, is no error).
  post("/queue/pause", (f) => queueNamed(pq, f.queue ?? "").pause());
  post("/queue/resume", (f) => queueNamed(pq, f.queue ?? "").resume());
  return app;
}
