/**
 * Fault: the server ends connections under pq (`pg_terminate_backend`, as an
 * admin, a pooler or a failover does): the pool connections of worker
 * processes in the middle of their batches, and the LISTEN connections of
 * the workers and of a waiting getter. Jobs arrive in bursts, so idle
 * workers depend on their listener to wake. Every job's effect must exist
 * exactly once, and a getter whose listener died must not sleep out its
 * timeout.
 *
 * Sizes: PQ_FAULT_JOBS (default 10,000), PQ_FAULT_WORKERS (default 3).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { databaseUrl } from "../_db.ts";
import { openTestPQ, sleep } from "../_pq.ts";
import type { Child } from "../_spawn.ts";
import {
  assertAlive,
  assertExactlyOnce,
  between,
  createEffects,
  envNumber,
  startWorker,
  stopWorker,
  tally,
  waitFor,
  workerFailures,
  workerResult,
} from "./_fault.ts";

const JOBS = envNumber("PQ_FAULT_JOBS", 10_000);
const WORKERS = envNumber("PQ_FAULT_WORKERS", 3);
const BURST = 500;

test(`terminating worker and listener backends: ${JOBS} jobs, each effect exactly once`, async () => {
  const t = await openTestPQ("fault_term", { max: 4 });
  const { sql } = t;
  const schema = t.scratch.schema;
  const url = databaseUrl();
  // The chaos and the probe puts run on a connection of their own.
  const admin = postgres(url, { max: 1, onnotice: () => {} });
  // A getter whose only wake-ups are NOTIFY and the listener's reconnect:
  // its safety-net poll is far beyond the test's bounds.
  const probePQ = createPQ(sql, { schema, pollInterval: "10m" });
  const workers: Child[] = [];
  let producing = true, stopped = false;
  let producer: Promise<void> | undefined, chaos: Promise<void> | undefined;
  try {
    await createEffects(sql, schema);
    const [{ relid }] = await sql`select
      to_regclass(${`"${schema}".queue`})::oid::int8 as relid`;
    const record = t.pq.queue("work").task("record", () => {});
    for (let slot = 0; slot < WORKERS; slot++) {
      workers.push(startWorker(url, schema, {
        mode: "run",
        app: `pq fault term ${slot}`,
        handlerMs: 10,
      }));
    }
    await Promise.all(workers.map((w) => w.line("READY")));

    // Producer: bursts of jobs with pauses, so workers go idle and wait.
    const ids: string[] = [];
    producer = (async () => {
      for (let i = 0; i < JOBS && !stopped; i += BURST) {
        const n = Math.min(BURST, JOBS - i);
        ids.push(
          ...await record.many(
            Array.from({ length: n }, (_, k) => ({ args: i + k })),
          ),
        );
        await sleep(between(300, 900));
      }
      producing = false;
    })();

    /**
     * Our backends: worker pools, and listeners on our table. No pool
     * connection of the last second: postgres.js 3.4.9 fetches array types
     * on a new connection and drops that query's promise, so terminating it
     * then is an unhandled rejection that ends the process, a driver bug
     * pq cannot catch (porsager/postgres#1192, #1223; RELIABILITY.md). The
     * listener's connection skips that fetch.
     */
    const listening = `listen pq_${relid}`;
    const victims = async (kind: "pool" | "listener" | "any") => {
      const rows = await admin`select pid, application_name as app
        from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()
          and (backend_start < now() - interval '1 second'
            or application_name = 'pq listener')
          and (application_name like 'pq fault term %'
            or (application_name = 'pq listener'
              and (query like ${`%${schema}%`} or query = ${listening})))`;
      return rows.filter((r) =>
        kind === "any" || (kind === "listener") === (r.app === "pq listener")
      ).map((r) => r.pid as number);
    };
    const terminated = { pool: 0, listener: 0 };
    chaos = (async () => {
      while (producing && !stopped) {
        await sleep(between(50, 250));
        const pids = await victims("any");
        if (pids.length === 0) continue;
        const pid = pids[between(0, pids.length - 1)];
        const [row] = await admin`select application_name as app,
          pg_terminate_backend(pid) as ok
          from pg_stat_activity where pid = ${pid}`;
        if (row?.ok) {
          if (row.app === "pq listener") terminated.listener++;
          else terminated.pool++;
        }
      }
    })();

    // Meanwhile: a getter waits; its listener (and the workers') dies and a
    // job is put at once, so its notification is lost. The getter must look
    // again when the listener reconnects, not after its 30 s timeout.
    const probe = probePQ.queue("probe");
    const wakes: number[] = [];
    while (producing) {
      assertAlive(workers);
      const got = probe.get({ timeout: "30s" });
      await sleep(between(200, 600));
      const listeners = await victims("listener");
      await admin`select pg_terminate_backend(pid)
        from unnest(${listeners}::int4[]) as pid`;
      terminated.listener += listeners.length;
      const putAt = performance.now();
      await admin`insert into ${admin(schema)}.queue (queue, data)
        values ('probe', ${String(wakes.length)}::text::json)`;
      const job = await got;
      wakes.push(performance.now() - putAt);
      assert.equal(job?.data, wakes.length - 1);
    }
    await producer;
    await chaos;

    const left = await waitFor(
      async () => {
        assertAlive(workers);
        const n = await tally(sql, schema);
        return n.left === 0 && n.jobs === JOBS ? n : null;
      },
      "every job to be done",
      120_000,
      250,
    );
    const codes = await Promise.all(workers.map((w) => stopWorker(w)));
    const results = workers.map(workerResult);
    const errors = results.reduce((sum, r) => sum + (r?.errors ?? 0), 0);
    console.log(
      `  terminate: ${JOBS} jobs, ${terminated.pool} pool and ` +
        `${terminated.listener} listener backends terminated, ` +
        `${errors} worker errors recovered; getter woken ${wakes.length} ` +
        `times after its listener died, slowest ${
          Math.round(Math.max(...wakes))
        } ms`,
    );
    assert.deepEqual(codes, workers.map(() => 0));
    assert.deepEqual(workers.flatMap(workerFailures), []);
    assert.ok(left.effects === JOBS);
    assert.ok(terminated.pool >= 5, `only ${terminated.pool} terminated`);
    assert.ok(wakes.length >= 3, `only ${wakes.length} probes`);
    assert.ok(
      Math.max(...wakes) < 5_000,
      `a getter slept ${Math.max(...wakes)} ms after its listener died`,
    );
    await assertExactlyOnce(sql, schema, ids);
  } finally {
    stopped = true;
    await Promise.allSettled([producer, chaos]);
    for (const w of workers) w.process.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    await probePQ.close();
    await admin.end({ timeout: 1 });
    await t.close();
  }
});

test("a handler failing with another connection's error is retried, not stuck", async () => {
  const t = await openTestPQ("fault_term_other", { max: 4 });
  // The handler's own client, as a handler might use for another database.
  const other = postgres(databaseUrl(), {
    max: 1,
    onnotice: () => {},
    connection: { application_name: "pq fault other client" },
  });
  try {
    const q = t.pq.queue("other");
    const stop = new AbortController();
    const runs: number[] = [];
    const eat = q.task("eat", async (_: unknown, job) => {
      runs.push(job.attempt);
      if (job.attempt === 1) await other`select pg_sleep(30)`;
      else stop.abort();
    }, { maxRetries: 1, retryIn: 0 });
    await eat({});
    const events: string[] = [];
    const work = q.work({
      signal: stop.signal,
      onEvent: (e) => void events.push(e.type),
    });
    await waitFor(() => runs.length === 1, "the first run", 10_000, 20);
    await sleep(200);
    const [row] = await t.sql`select count(*)::int as n from (
      select pg_terminate_backend(pid) from pg_stat_activity
      where application_name = 'pq fault other client') as x`;
    assert.equal(row.n, 1);
    const stats = await Promise.race([
      work,
      sleep(10_000).then(() => "stuck" as const),
    ]);
    assert.notEqual(stats, "stuck", `the slot is stuck; events ${events}`);
    assert.deepEqual(stats, { done: 1, retried: 1, failed: 0 });
    assert.deepEqual(runs, [1, 2]);
  } finally {
    await other.end({ timeout: 1 });
    await t.close();
  }
});
