/**
 * Fault: PostgreSQL itself restarts in the middle of a run, once by a fast
 * shutdown and once as in a crash (immediate shutdown, crash recovery at
 * the start), against a throwaway server this test starts. Worker processes
 * must reconnect and finish, with every job's effect exactly once; a getter
 * waiting across a restart must be woken by a put after it.
 *
 * Sizes: PQ_FAULT_RESTART_JOBS (default 4,000), PQ_FAULT_WORKERS (default 3).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { sleep } from "../_pq.ts";
import type { Child } from "../_spawn.ts";
import { startEmbeddedPostgres } from "../embedded_pg.ts";
import {
  assertAlive,
  assertExactlyOnce,
  createEffects,
  enqueue,
  envNumber,
  startWorker,
  stopWorker,
  tally,
  waitFor,
  workerFailures,
  workerResult,
} from "./_fault.ts";

const JOBS = envNumber("PQ_FAULT_RESTART_JOBS", 4_000);
const WORKERS = envNumber("PQ_FAULT_WORKERS", 3);
const SCHEMA = "fault_restart";

test(`restarting PostgreSQL mid-run: ${JOBS} jobs, each effect exactly once`, async () => {
  const pg = await startEmbeddedPostgres();
  const sql = postgres(pg.url, { max: 2, onnotice: () => {} });
  // The test's own PQ: a getter that waits across a restart, woken only by
  // NOTIFY or its listener's reconnect (its poll is far beyond the bounds).
  const pq = createPQ(sql, { schema: SCHEMA, pollInterval: "10m" });
  const workers: Child[] = [];
  try {
    await pq.create();
    await createEffects(sql, SCHEMA);
    const record = pq.queue("work").task("record", () => {});
    // Most jobs now; the rest after the restarts, for idle workers to get.
    const ids = await enqueue(record.many, JOBS - Math.floor(JOBS / 4));
    for (let slot = 0; slot < WORKERS; slot++) {
      workers.push(startWorker(pg.url, SCHEMA, {
        mode: "run",
        app: `pq fault restart ${slot}`,
        handlerMs: 10,
      }));
    }
    await Promise.all(workers.map((w) => w.line("READY")));
    const began = performance.now();

    /** Waits until about `share` of the first jobs are done. */
    const progress = (share: number) =>
      waitFor(
        async () => {
          assertAlive(workers);
          return (await tally(sql, SCHEMA)).jobs >= ids.length * share;
        },
        `${share * 100}% of the jobs to be done`,
        120_000,
        100,
      );

    await progress(0.25);
    const before1 = (await tally(sql, SCHEMA)).jobs;
    await pg.restart({ downMs: 1_000 });
    await progress(0.6);
    const before2 = (await tally(sql, SCHEMA)).jobs;
    // A getter waits across the crash; a put after it must wake it.
    const probe = pq.queue("probe");
    const got = probe.get({ timeout: "60s" });
    await sleep(300);
    await pg.restart({ immediate: true, downMs: 1_000 });
    const putAt = performance.now();
    // The first statements after a restart may meet the dead connections.
    await waitFor(
      () => probe.put("after the crash").then(() => true, () => false),
      "a put to succeed after the restart",
      30_000,
    );
    const job = await got;
    const wokenMs = performance.now() - putAt;
    assert.equal(job?.data, "after the crash");

    ids.push(...await enqueue(record.many, Math.floor(JOBS / 4)));
    const done = await waitFor(
      async () => {
        assertAlive(workers);
        const n = await tally(sql, SCHEMA);
        return n.left === 0 && n.jobs === ids.length ? n : null;
      },
      "every job to be done",
      120_000,
      250,
    );
    const codes = await Promise.all(workers.map((w) => stopWorker(w)));
    const errors = workers.map(workerResult).reduce(
      (sum, r) => sum + (r?.errors ?? 0),
      0,
    );
    console.log(
      `  restart: ${ids.length} jobs over ${WORKERS} processes, PostgreSQL ` +
        `${pg.version} restarted after ${before1} jobs (fast) and ` +
        `${before2} jobs (immediate), ${errors} worker errors recovered, ` +
        `getter woken ${Math.round(wokenMs)} ms after the put, ` +
        `${((performance.now() - began) / 1000).toFixed(1)} s`,
    );
    assert.deepEqual(codes, workers.map(() => 0));
    assert.deepEqual(workers.flatMap(workerFailures), []);
    assert.equal(done.effects, ids.length);
    assert.ok(wokenMs < 15_000, `the getter slept ${wokenMs} ms`);
    await assertExactlyOnce(sql, SCHEMA, ids);
  } finally {
    for (const w of workers) w.process.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    await pq.close();
    await sql.end({ timeout: 1 });
    await pg.stop();
  }
});
