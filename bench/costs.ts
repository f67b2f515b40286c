/**
 * Costs that are not a rate: `deno task bench:costs` (about two minutes;
 * `--quick` for a smoke run).
 *
 * - Heartbeats: statements per second that renew leases, with 1 and with
 *   500 long lease jobs running in one worker (lease 3 s: a renewal every
 *   second, whatever the number of jobs).
 * - Idle schedules: the CPU a worker uses over a minute while its queue has
 *   1,000 schedules and none is due.
 * - Blocked by a limit: the takes per second of a worker (8 slots,
 *   pollInterval 1 s) whose every ready job waits behind one group at its
 *   limit (issue 13: at most one per worker per pollInterval).
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { benchUrl, freshSchema } from "./db.ts";

const quick = process.argv.includes("--quick");
const url = benchUrl();
const log = (text: string) => process.stderr.write(`${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Renewal statements per second with `jobs` long lease jobs running. */
async function heartbeats(jobs: number): Promise<number> {
  let renewals = 0;
  const sql = postgres(url, {
    max: 20,
    onnotice: () => {},
    debug: (_c, query) => {
      if (query.includes("lease_until = statement_timestamp() + h.ms")) {
        renewals++;
      }
    },
  });
  const scratch = await freshSchema(sql);
  const pq = createPQ(sql, { schema: scratch.schema });
  try {
    await pq.create();
    const q = pq.queue("long");
    let started = 0;
    const stop = new AbortController();
    const long = q.task("long", async (_: unknown, job) => {
      started++;
      await new Promise((r) => job.signal.addEventListener("abort", r));
    }, { lease: "3s" });
    await long.many(Array.from({ length: jobs }, () => ({ args: {} })));
    // A slot per job: lease slots hold no connection while handlers run.
    const work = q.work({
      concurrency: jobs,
      signal: stop.signal,
      gracePeriod: 0,
      onEvent: () => {},
    });
    while (started < jobs) await sleep(50);
    const seconds = quick ? 3 : 10;
    renewals = 0;
    await sleep(seconds * 1000);
    const rate = renewals / seconds;
    stop.abort();
    await work;
    return rate;
  } finally {
    await pq.close();
    await scratch.drop();
    await sql.end();
  }
}

/** A worker's CPU (percent of one core) with 1,000 idle schedules. */
async function idleSchedules(): Promise<number> {
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  const scratch = await freshSchema(sql);
  const pq = createPQ(sql, { schema: scratch.schema });
  try {
    await pq.create();
    const q = pq.queue("cron");
    q.task("report", () => {});
    for (let i = 0; i < 1_000; i++) {
      await q.schedule(`s${i}`, `${i % 60} ${i % 24} * * *`, "report");
    }
    const stop = new AbortController();
    const work = q.work({ signal: stop.signal });
    await sleep(1_000);
    const seconds = quick ? 5 : 60;
    const before = process.cpuUsage();
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const used = process.cpuUsage(before);
    const wall = performance.now() - t0;
    stop.abort();
    await work;
    return ((used.user + used.system) / 1000) / wall * 100;
  } finally {
    await pq.close();
    await scratch.drop();
    await sql.end();
  }
}

/** Takes per second of a worker whose jobs all wait behind one group. */
async function blockedTakes(): Promise<number> {
  let takes = 0;
  const sql = postgres(url, {
    max: 12,
    onnotice: () => {},
    debug: (_c, query) => {
      if (query.includes("take_limited")) takes++;
    },
  });
  const scratch = await freshSchema(sql);
  const pq = createPQ(sql, { schema: scratch.schema, pollInterval: "1s" });
  try {
    await pq.create();
    const q = pq.queue("blocked");
    let started = 0;
    const stop = new AbortController();
    const task = q.task("one", async (_: unknown, job) => {
      started++;
      await new Promise((r) => job.signal.addEventListener("abort", r));
    }, { group: () => "g", lease: "30s" });
    await task.many(Array.from({ length: 200 }, () => ({ args: {} })));
    const work = q.work({
      concurrency: 8,
      signal: stop.signal,
      gracePeriod: 0,
      onEvent: () => {},
    });
    while (started < 1) await sleep(50);
    await sleep(2_000);
    const seconds = quick ? 5 : 20;
    takes = 0;
    await sleep(seconds * 1000);
    const rate = takes / seconds;
    stop.abort();
    await work;
    return rate;
  } finally {
    await pq.close();
    await scratch.drop();
    await sql.end();
  }
}

log("heartbeats with 1 long job...");
const one = await heartbeats(1);
log("heartbeats with 500 long jobs...");
const many = await heartbeats(500);
log("a worker with 1,000 idle schedules...");
const cpu = await idleSchedules();
log("a worker blocked behind one group...");
const blocked = await blockedTakes();
console.log(`pq costs, ${quick ? "quick" : "full"} run`);
console.log();
console.log("| cost | measured | target |");
console.log("| --- | --: | --- |");
console.log(
  `| lease renewals, 1 long job running (lease 3 s) | ${
    one.toFixed(2)
  } statements/s | independent of the number of jobs |`,
);
console.log(
  `| lease renewals, 500 long jobs running (lease 3 s) | ${
    many.toFixed(2)
  } statements/s | the same |`,
);
console.log(
  `| worker CPU, 1,000 idle schedules | ${
    cpu.toFixed(2)
  } % of one core | < 5 % |`,
);
console.log(
  `| takes of a worker (8 slots, pollInterval 1 s) whose 199 ready jobs wait behind one running group | ${
    blocked.toFixed(2)
  } statements/s | ≤ 1 per pollInterval |`,
);
