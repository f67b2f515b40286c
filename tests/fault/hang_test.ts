/**
 * Fault: handlers that never return. A stopping worker waits for them for
 * its grace period, then aborts `job.signal`, rolls their transactions back
 * (ending server processes stuck in a statement) and resolves; the jobs come
 * back and a later worker runs each exactly once.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { createPQ, type TransactionSql, type WorkEvent } from "../../mod.ts";
import { databaseUrl } from "../_db.ts";
import { openTestPQ, since, sleep } from "../_pq.ts";
import {
  assertExactlyOnce,
  createEffects,
  startWorker,
  stopWorker,
  waitFor,
  workerResult,
} from "./_fault.ts";

test("handlers that never return are aborted after the grace period and their jobs come back", async () => {
  const t = await openTestPQ("fault_hang", { max: 8 });
  const { sql } = t;
  const schema = t.scratch.schema;
  try {
    await createEffects(sql, schema);
    const effect = (job: { id: string; attempt: number }, tx: TransactionSql) =>
      tx`insert into ${tx(schema)}.effects (job_id, attempt)
        values (${job.id}, ${job.attempt})`;
    const queue = t.pq.queue("hang");
    const signals: AbortSignal[] = [];
    const started = new Set<string>();
    // Three ways to never return: ignore job.signal, sit in a long statement,
    // or wait for job.signal and then throw (a well-behaved handler).
    const ignore = queue.task("ignore", async (_: unknown, job) => {
      await effect(job, job.tx);
      started.add(job.id);
      signals.push(job.signal);
      await new Promise(() => {});
    });
    const statement = queue.task("statement", async (_: unknown, job) => {
      await effect(job, job.tx);
      started.add(job.id);
      signals.push(job.signal);
      await job.tx`select pg_sleep(600)`;
    });
    const polite = queue.task("polite", async (_: unknown, job) => {
      await effect(job, job.tx);
      started.add(job.id);
      signals.push(job.signal);
      await new Promise((_, reject) => {
        job.signal.addEventListener("abort", () => reject(job.signal.reason), {
          once: true,
        });
      });
    });
    const ids = [
      ...await ignore.many([{ args: 1 }, { args: 2 }]),
      ...await statement.many([{ args: 1 }, { args: 2 }]),
      ...await polite.many([{ args: 1 }, { args: 2 }]),
    ];
    const stop = new AbortController();
    const events: WorkEvent[] = [];
    const work = queue.work({
      concurrency: 6,
      batchSize: 1,
      signal: stop.signal,
      gracePeriod: 500,
      onEvent: (e) => void events.push(e),
    });
    await waitFor(
      () => started.size === 6,
      "all six handlers to start",
      10_000,
      20,
    );
    const stopAt = performance.now();
    stop.abort();
    await sleep(250);
    assert.ok(signals.every((s) => !s.aborted), "not aborted within grace");
    const stats = await work;
    const tookMs = since(stopAt);
    console.log(
      `  hang: work() resolved ${Math.round(tookMs)} ms after the stop`,
    );
    // Grace 500 ms, then 1 s for the stuck statements' server processes.
    assert.ok(tookMs >= 450 && tookMs < 5_000, `resolved after ${tookMs} ms`);
    assert.deepEqual(stats, { done: 0, retried: 0, failed: 0 });
    assert.ok(signals.every((s) => s.aborted), "every job.signal aborted");
    assert.equal(events.filter((e) => e.type === "abort").length, 6);
    const [{ n: written }] = await sql`select count(*)::int as n
      from ${sql(schema)}.effects`;
    assert.equal(written, 0, "the hung handlers' writes rolled back");
    assert.equal(await queue.size(), 6, "the six jobs are back");
    const [{ n: busy }] = await sql`select count(*)::int as n
      from pg_stat_activity where query like '%pg_sleep(600)%'
        and pid <> pg_backend_pid()`;
    assert.equal(busy, 0, "no statement is left running");

    // Another PQ (as another process would) runs them, each exactly once.
    const healthy = createPQ(sql, { schema });
    try {
      const again = healthy.queue("hang");
      for (const name of ["ignore", "statement", "polite"]) {
        again.task(name, async (_: unknown, job) => await effect(job, job.tx));
      }
      assert.deepEqual(await again.work({ burst: true }), {
        done: 6,
        retried: 0,
        failed: 0,
      });
    } finally {
      await healthy.close();
    }
    await assertExactlyOnce(sql, schema, ids);
  } finally {
    await t.close();
  }
});

test("a worker process stopped by SIGTERM with a hung handler exits after its grace period; the job comes back", async () => {
  const t = await openTestPQ("fault_hang_process", { max: 2 });
  const { sql } = t;
  const schema = t.scratch.schema;
  try {
    await createEffects(sql, schema);
    const queue = t.pq.queue("work");
    const hang = queue.task("hang", () => {});
    const id = await hang({});
    const worker = startWorker(databaseUrl(), schema, {
      mode: "run",
      app: "pq fault hang",
      grace: "1s",
    });
    assert.equal(await worker.line("STARTED"), `STARTED ${id}`);
    const stopAt = performance.now();
    const code = await stopWorker(worker);
    const tookMs = since(stopAt);
    console.log(
      `  hang: the process exited ${Math.round(tookMs)} ms after SIGTERM`,
    );
    assert.equal(code, 0);
    assert.ok(tookMs >= 900 && tookMs < 8_000, `exited after ${tookMs} ms`);
    assert.deepEqual(workerResult(worker), {
      done: 0,
      retried: 0,
      failed: 0,
      errors: 0,
    });
    const [{ n }] = await sql`select count(*)::int as n
      from ${sql(schema)}.effects`;
    assert.equal(n, 0, "the hung handler's write rolled back");
    assert.equal(await queue.size(), 1, "the job is back");
    const [row] = await sql`select id::text, attempts from ${
      sql(schema)
    }.queue`;
    assert.deepEqual({ ...row }, { id, attempts: 0 });
  } finally {
    await t.close();
  }
});
