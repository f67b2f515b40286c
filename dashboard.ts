/**
 * A web dashboard for a pq table: every queue with its counts, lag and
 * charts; a queue's jobs page by page; a job with its data, error and
 * result; failed jobs to retry or delete; schedules to pause; queues to
 * pause and resume, and the limits of this process's tasks. Server-side
 * HTML with inline SVG charts, no build step, no CDN: it works offline.
 *
 * `dashboard(pq, options)` returns a web-standard handler, `(request:
 * Request) => Promise<Response>`: mount it in `Deno.serve`, `Bun.serve`,
 * Hono, or Node through an adapter such as `@hono/node-server`:
 *
 * ```ts ignore
 * import { serve } from "@hono/node-server";
 * serve({ fetch: dashboard(pq), port: 8080 });
 * ```
 *
 * Safe by default: read-only unless `readOnly: false`; every action is a
 * POST that carries a CSRF token and must come from the same origin; an
 * `authorize(request)` can refuse any request; every value is escaped, and
 * a Content-Security-Policy lets no script run but the page's own. It needs
 * the `hono` package (an optional peer dependency of `@pq/pq`: only this
 * entry point loads it).
 *
 * @example Serve a read-only dashboard under /ops/
 * ```ts
 * import postgres from "postgres";
 * import { createPQ } from "@pq/pq";
 * import { dashboard } from "@pq/pq/dashboard";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples" });
 * await pq.create();
 * await pq.queue("dashboard-apples").put({ kind: "Cox" });
 * const handler = dashboard(pq, {
 *   basePath: "/ops/",
 *   authorize: (request) => request.headers.get("x-user") === "admin",
 * });
 * const ok = await handler(new Request("http://localhost/ops/", {
 *   headers: { "x-user": "admin" },
 * }));
 * assert.equal(ok.status, 200);
 * assert.match(await ok.text(), /dashboard-apples/);
 * const refused = await handler(new Request("http://localhost/ops/"));
 * assert.equal(refused.status, 403);
 * await pq.queue("dashboard-apples").clear();
 * await pq.close();
 * await sql.end();
 * ```
 *
 * @module
 */

import type { PQ } from "./src/create_pq.ts";
import { coreOf } from "./src/create_pq.ts";
import { dashboardApp } from "./src/dashboard/app.ts";
import { describe } from "./src/describe.ts";

/**
 * The options of {@linkcode dashboard}.
 *
 * @example
 * ```ts
 * import type { DashboardOptions } from "@pq/pq/dashboard";
 *
 * const options: DashboardOptions = {
 *   basePath: "/admin/queues/",
 *   readOnly: false,
 *   authorize: (request) => request.headers.get("x-role") === "ops",
 * };
 * ```
 */
export interface DashboardOptions {
  /** Where it is mounted, e.g. `"/ops/"` (default `"/"`). */
  basePath?: string;
  /** Refuse every action (default true): `false` allows retry, pause, ... */
  readOnly?: boolean;
  /**
   * Called with every request (pages and actions); a false answer refuses
   * it with 403. Default: allow all (put the dashboard behind your own
   * authentication, or pass this).
   */
  authorize?: (request: Request) => boolean | Promise<boolean>;
}

/**
 * A dashboard of a PQ's table, as a web-standard request handler.
 *
 * @param pq The PQ from `createPQ()`.
 * @param options `basePath`, `readOnly` (default true), `authorize`.
 * @returns The handler: `(request: Request) => Promise<Response>`.
 * @throws {TypeError} If `pq` is not a PQ or an option is invalid.
 *
 * @example Under Deno.serve
 * ```ts ignore
 * import { dashboard } from "@pq/pq/dashboard";
 * Deno.serve({ port: 8080 }, dashboard(pq, { readOnly: false }));
 * ```
 */
export function dashboard(
  pq: PQ,
  options: DashboardOptions = {},
): (request: Request) => Promise<Response> {
  coreOf(pq); // a PQ, or a TypeError that says so
  const { basePath = "/", readOnly = true, authorize = () => true } = options;
  if (typeof basePath !== "string" || !basePath.startsWith("/")) {
    throw new TypeError(
      `'basePath' must be a path that starts with "/": received ${
        describe(basePath)
      }`,
    );
  }
  if (typeof readOnly !== "boolean") {
    throw new TypeError(
      `'readOnly' must be a boolean: received ${describe(readOnly)}`,
    );
  }
  if (typeof authorize !== "function") {
    throw new TypeError(
      `'authorize' must be a function: received ${describe(authorize)}`,
    );
  }
  const base = basePath.endsWith("/") ? basePath : `${basePath}/`;
  const app = dashboardApp(pq, { base, readOnly, authorize });
  return async (request) => await app.fetch(request);
}
