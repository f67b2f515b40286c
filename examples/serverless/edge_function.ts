/**
 * pq in a Deno Deploy app or a Supabase Edge Function.
 *
 * `POST /` with `{ "to": "ada@example.com" }` enqueues a welcome email, then
 * drains the queue in a burst with a deadline before answering, so jobs
 * that arrive while no worker runs are still done. Jobs a run leaves over
 * (the deadline passed, a retry is due later) are taken by the next request,
 * or by a cron job that calls `POST /drain`. `POST /setup` creates the
 * table; run it once after deploying (it is idempotent).
 *
 * Serverless PostgreSQL is reached through a transaction-mode pooler
 * (Supabase's Supavisor on port 6543, Neon's pooled host): there LISTEN
 * never fires and named prepared statements break, hence `listen: false`
 * (blocking gets poll) and `prepare: false`.
 *
 * ```sh
 * # Supabase: supabase/functions/welcome/index.ts, SUPABASE_DB_URL is set.
 * # Deno Deploy or locally:
 * DATABASE_URL=postgres://... deno run -A examples/serverless/edge_function.ts
 * curl -X POST localhost:8000/setup
 * curl -X POST localhost:8000 -d '{"to":"ada@example.com"}'
 * ```
 *
 * In your project, import from JSR: `deno add jsr:@pq/pq npm:postgres`.
 *
 * @module
 */

import postgres from "postgres";
import { createPQ } from "@pq/pq";

const url = Deno.env.get("DATABASE_URL") ?? Deno.env.get("SUPABASE_DB_URL");
if (!url) throw new Error("Set DATABASE_URL (or run on Supabase)");

// Module scope: reused while the isolate stays warm.
const sql = postgres(url, { prepare: false, max: 4, idle_timeout: 20 });
const pq = createPQ(sql, { listen: false, pollInterval: "500ms" });
const emails = pq.queue("emails");

/** Enqueues a welcome email; `emails.work()` sends it. */
export const sendWelcome = emails.task(
  "welcome",
  async (args: { to: string }, job) => {
    // Writes through job.tx commit together with the job leaving the queue.
    await job.tx`select ${args.to}::text as recipient`;
    console.log(`welcome email to ${args.to} (job ${job.id})`);
  },
  { maxRetries: 3, retryIn: "1m" },
);

/** Runs ready jobs until none is left or 20 s passed. */
async function drain() {
  return await emails.work({
    burst: true,
    concurrency: 4,
    signal: AbortSignal.timeout(20_000),
  });
}

/**
 * Handles one request.
 *
 * @param request `POST /setup`, `POST /drain` or `POST /` with `{ to }`.
 * @returns JSON with the job id and what the drain did.
 */
export async function handler(request: Request): Promise<Response> {
  if (request.method !== "POST") {
    return new Response("POST only", { status: 405 });
  }
  const { pathname } = new URL(request.url);
  if (pathname === "/setup") {
    await pq.create();
    return Response.json({ ok: true });
  }
  if (pathname === "/drain") return Response.json(await drain());
  const body = await request.json().catch(() => null);
  if (typeof body?.to !== "string") {
    return Response.json({ error: 'expected {"to": "<email>"}' }, {
      status: 400,
    });
  }
  const id = await sendWelcome({ to: body.to });
  return Response.json({ id, ...await drain() });
}

if (import.meta.main) Deno.serve(handler);
