/**
 * pq in an AWS Lambda function (Node.js 20 runtime) behind an API Gateway
 * HTTP API or a function URL.
 *
 * A request with `{ "orderId": 42 }` enqueues a receipt job, then drains
 * the queue in a burst that ends a few seconds before Lambda's own timeout
 * (`context.getRemainingTimeInMillis()`). Jobs left over are taken by the
 * next invocation, or by an EventBridge schedule that invokes the function
 * with `{ "drain": true }`. Create the table once at deploy time with
 * `{ "setup": true }` (idempotent).
 *
 * RDS Proxy, PgBouncer or Supavisor in transaction mode: LISTEN never fires
 * through them and named prepared statements break, hence `listen: false`
 * and `prepare: false`. The client lives at module scope and is reused by
 * warm invocations; pq keeps no timer running between them.
 *
 * Build: `npm install @pq/pq postgres`, bundle this file with esbuild (or
 * compile it with tsc) and deploy `handler`. On Vercel, the same body fits
 * a `POST(request: Request)` route handler.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ, type WorkStats } from "@pq/pq";

/** The parts of an API Gateway HTTP API (v2) event used here. */
export interface HttpEvent {
  body?: string | null;
  isBase64Encoded?: boolean;
}

/** The parts of Lambda's context object used here. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
}

/** What API Gateway expects back. */
export interface HttpResult {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const sql = postgres(process.env.DATABASE_URL!, {
  prepare: false,
  max: 4,
  idle_timeout: 20,
});
const pq = createPQ(sql, { listen: false });
const receipts = pq.queue("receipts");

/** Enqueues a receipt; `receipts.work()` sends it. */
export const sendReceipt = receipts.task(
  "send",
  async (args: { orderId: number }, job) => {
    await job.tx`select ${args.orderId}::int8 as order_id`;
    console.log(`receipt for order ${args.orderId} (job ${job.id})`);
  },
  { maxRetries: 5, retryIn: "30s", backoff: "exponential" },
);

function reply(statusCode: number, data: unknown): HttpResult {
  return {
    statusCode,
    headers: { "content-type": "application/json" },
    body: JSON.stringify(data),
  };
}

/** Runs ready jobs until none is left or the invocation nearly timed out. */
async function drain(context: LambdaContext): Promise<WorkStats> {
  const budget = context.getRemainingTimeInMillis() - 3_000;
  return await receipts.work({
    burst: true,
    concurrency: 4,
    signal: AbortSignal.timeout(Math.max(1_000, budget)),
  });
}

/**
 * The Lambda handler.
 *
 * @param event An HTTP event whose JSON body is `{ orderId }`, `{ drain:
 * true }` or `{ setup: true }`.
 * @param context Lambda's context: the deadline comes from it.
 * @returns The job id and what the drain did, as JSON.
 */
export async function handler(
  event: HttpEvent,
  context: LambdaContext,
): Promise<HttpResult> {
  let body: { orderId?: unknown; drain?: unknown; setup?: unknown } | null;
  try {
    const text = event.isBase64Encoded
      ? atob(event.body ?? "")
      : event.body ?? "null";
    body = JSON.parse(text);
  } catch {
    return reply(400, { error: "the body must be JSON" });
  }
  if (body?.setup === true) {
    await pq.create();
    return reply(200, { ok: true });
  }
  if (body?.drain === true) return reply(200, await drain(context));
  if (typeof body?.orderId !== "number") {
    return reply(400, { error: 'expected {"orderId": <number>}' });
  }
  const id = await sendReceipt({ orderId: body.orderId });
  return reply(200, { id, ...await drain(context) });
}
