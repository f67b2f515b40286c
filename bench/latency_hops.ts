/**
 * Where pickup latency goes: `deno task bench:hops` (about 30 s). An idle
 * worker (concurrency 1) and a job put every 20 ms, 500 times; each job's
 * path is timed at four points seen from outside pq:
 *
 * 1. `put()` called -> resolved (the insert, its trigger and the commit);
 * 2. -> the NOTIFY arrives (a separate LISTEN connection on the same
 *    channel, standing in for pq's listener, which gets it at the same
 *    moment);
 * 3. -> the worker sends its BEGIN (postgres.js's `debug` hook: the wake,
 *    the waiter, the slot's loop);
 * 4. -> the worker sends its take (the BEGIN's round trip: postgres.js
 *    calls a transaction's callback only once BEGIN was answered);
 * 5. -> the handler starts (the take's round trip, decoding).
 *
 * Prints p50 / p95 / p99 of each hop and of the whole, in milliseconds.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { benchUrl, freshSchema } from "./db.ts";
import { percentile } from "./stats.ts";

const url = benchUrl();
const JOBS = process.argv.includes("--quick") ? 50 : 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let takeSentAt = 0;
let beginSentAt = 0;
const sql = postgres(url, {
  max: 4,
  onnotice: () => {},
  debug: (_connection, query) => {
    if (query.startsWith("begin")) beginSentAt = performance.now();
    if (query.includes("taken as (")) takeSentAt = performance.now();
  },
});
const scratch = await freshSchema(sql);
const listener = postgres(url, { max: 1, onnotice: () => {} });
try {
  const pq = createPQ(sql, { schema: scratch.schema });
  await pq.create();
  const [{ relid }] =
    await sql`select ${`"${scratch.schema}"."queue"`}::regclass::oid::text as relid`;
  let notifiedAt = 0;
  await listener.listen(`pq_${relid}`, () => {
    notifiedAt ||= performance.now();
  });
  const q = pq.queue("hops");
  let started: (() => void) | null = null;
  let startedAt = 0;
  const task = q.task("t", () => {
    startedAt = performance.now();
    started?.();
  });
  const stop = new AbortController();
  const working = q.work({ concurrency: 1, signal: stop.signal });
  await sleep(500);
  const hops = {
    put: [],
    notify: [],
    wake: [],
    begin: [],
    start: [],
    total: [],
  } as Record<
    string,
    number[]
  >;
  for (let i = 0; i < JOBS; i++) {
    await sleep(20);
    notifiedAt = 0;
    const ran = new Promise<void>((resolve) => (started = resolve));
    const t0 = performance.now();
    await task(i);
    const t1 = performance.now();
    await ran;
    // Taken before the wake: not a pickup by notification.
    if (!notifiedAt || takeSentAt < t1 || beginSentAt < t1) continue;
    hops.put.push(t1 - t0);
    hops.notify.push(Math.max(0, notifiedAt - t1));
    hops.wake.push(beginSentAt - Math.max(notifiedAt, t1));
    hops.begin.push(takeSentAt - beginSentAt);
    hops.start.push(startedAt - takeSentAt);
    hops.total.push(startedAt - t0);
  }
  stop.abort();
  await working;
  await pq.close();
  const row = (name: string, values: number[]) =>
    `| ${name} | ${
      [50, 95, 99].map((p) => percentile(values, p).toFixed(2)).join(" / ")
    } |`;
  console.log(
    `pickup latency by hop, ${hops.total.length} of ${JOBS} jobs (ms, p50 / p95 / p99)`,
  );
  console.log();
  console.log("| hop | p50 / p95 / p99 |");
  console.log("| --- | --: |");
  console.log(row("1. put(): insert, trigger, commit", hops.put));
  console.log(row("2. commit -> NOTIFY delivered", hops.notify));
  console.log(row("3. NOTIFY -> BEGIN sent (wake, slot loop)", hops.wake));
  console.log(row("4. BEGIN sent -> take sent (its round trip)", hops.begin));
  console.log(row("5. take sent -> handler start (take)", hops.start));
  console.log(row("put() called -> handler start", hops.total));
} finally {
  await listener.end();
  await scratch.drop();
  await sql.end();
}
