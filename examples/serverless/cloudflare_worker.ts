/**
 * pq in a Cloudflare Worker.
 *
 * `POST /` with `{ "key": "cat.jpg" }` enqueues a thumbnail job and drains
 * the queue in a burst with a deadline before answering; a Cron Trigger
 * (`scheduled`) drains what is left. `POST /setup` creates the table: run
 * it once after deploying (it is idempotent).
 *
 * postgres.js reaches PostgreSQL over `cloudflare:sockets` (its `workerd`
 * export). Through Hyperdrive or a transaction-mode pooler LISTEN never
 * fires and named prepared statements break, hence `listen: false` and
 * `prepare: false`. A Worker may not reuse a connection across requests, so
 * each request opens its client and ends it with `ctx.waitUntil()`.
 *
 * wrangler.toml:
 * ```toml
 * main = "cloudflare_worker.ts"
 * compatibility_flags = ["nodejs_compat"]
 * [triggers]
 * crons = ["* * * * *"]
 * ```
 * and `wrangler secret put DATABASE_URL` (or use `env.HYPERDRIVE
 * .connectionString`). `npm install @pq/pq postgres` in the Worker.
 *
 * `tests/packaging/npm_package_test.ts` bundles this file with esbuild and
 * runs it in workerd through Miniflare.
 *
 * @module
 */

import postgres from "postgres";
import { createPQ, type WorkStats } from "@pq/pq";

/** The Worker's bindings. */
export interface Env {
  DATABASE_URL: string;
}

/** The part of the Workers runtime's ExecutionContext used here. */
export interface ExecutionContext {
  waitUntil(promise: Promise<unknown>): void;
}

/** A PQ on a client of its own, for one request or one cron run. */
function open(env: Env) {
  const sql = postgres(env.DATABASE_URL, {
    prepare: false,
    max: 2,
    onnotice: () => {},
  });
  const pq = createPQ(sql, { listen: false });
  const thumbnails = pq.queue("thumbnails");
  const resize = thumbnails.task(
    "resize",
    async (args: { key: string }, job) => {
      // Writes through job.tx commit together with the job leaving the queue.
      await job.tx`select ${args.key}::text as key`;
      console.log(`thumbnail of ${args.key} (job ${job.id})`);
    },
    { maxRetries: 3, retryIn: "1m" },
  );
  /** Runs ready jobs until none is left or 20 s passed. */
  const drain = (): Promise<WorkStats> =>
    thumbnails.work({
      burst: true,
      concurrency: 2,
      signal: AbortSignal.timeout(20_000),
    });
  const close = async () => {
    await pq.close();
    await sql.end();
  };
  return { pq, resize, drain, close };
}

export default {
  /**
   * Enqueues and drains on `POST /`; creates the table on `POST /setup`.
   *
   * @param request The request.
   * @param env The bindings.
   * @param ctx Keeps the Worker alive while the client closes.
   * @returns JSON with the job id and what the drain did.
   */
  async fetch(
    request: Request,
    env: Env,
    ctx: ExecutionContext,
  ): Promise<Response> {
    if (request.method !== "POST") {
      return new Response("POST only", { status: 405 });
    }
    const body = await request.json().catch(() => null) as
      | { key?: unknown }
      | null;
    const setup = new URL(request.url).pathname === "/setup";
    if (!setup && typeof body?.key !== "string") {
      return Response.json({ error: 'expected {"key": "<name>"}' }, {
        status: 400,
      });
    }
    const { pq, resize, drain, close } = open(env);
    try {
      if (setup) {
        await pq.create();
        return Response.json({ ok: true });
      }
      const id = await resize({ key: body!.key as string });
      return Response.json({ id, ...await drain() });
    } finally {
      ctx.waitUntil(close());
    }
  },

  /**
   * A Cron Trigger: drains what requests left over.
   *
   * @param _controller The trigger's time and cron expression.
   * @param env The bindings.
   * @param ctx Keeps the Worker alive until the drain ends.
   */
  scheduled(_controller: unknown, env: Env, ctx: ExecutionContext): void {
    const { drain, close } = open(env);
    ctx.waitUntil(drain().finally(close));
  },
};
