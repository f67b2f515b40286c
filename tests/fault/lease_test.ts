/**
 * Faults in lease mode: worker processes killed by SIGKILL at random
 * moments over thousands of lease jobs, a worker paused (SIGSTOP) for
 * longer than its lease, and a job whose handler kills its process every
 * time.
 *
 * Sizes: PQ_FAULT_LEASE_JOBS (default 5,000), PQ_FAULT_WORKERS (default 3),
 * PQ_FAULT_KILLS (the most kills, default 30).
 */

import { spawnSync } from "node:child_process";
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type postgres from "postgres";
import { databaseUrl } from "../_db.ts";
import { openTestPQ, sleep, type TestPQ } from "../_pq.ts";
import { type Child, spawnTs } from "../_spawn.ts";
import { between, enqueue, envNumber, waitFor } from "./_fault.ts";

const JOBS = envNumber("PQ_FAULT_LEASE_JOBS", 5_000);
const WORKERS = envNumber("PQ_FAULT_WORKERS", 3);
const KILLS = envNumber("PQ_FAULT_KILLS", 30);
const DEADLINE_MS = envNumber("PQ_FAULT_DEADLINE_MS", 180_000);
const LEASE_MS = 1_000;
const POLL_MS = 500;

/** The effect tables the lease worker writes. */
async function createTables(sql: postgres.Sql, schema: string): Promise<void> {
  for (const table of ["effects", "starts"]) {
    await sql`create table ${sql(schema)}.${sql(table)} (
      job_id bigint not null, attempt int, pid int,
      at timestamptz not null default clock_timestamp())`;
  }
}

function startLeaseWorker(
  schema: string,
  env: Record<string, string> = {},
): Child {
  return spawnTs("tests/fixtures/lease_worker.ts", [schema], {
    DATABASE_URL: databaseUrl(),
    PQ_FAULT_MODE: "run",
    PQ_LEASE: `${LEASE_MS}ms`,
    PQ_POLL: `${POLL_MS}ms`,
    ...env,
  });
}

/**
 * Sends a signal through kill(1): on Deno, a child process that was sent
 * SIGSTOP by `child.kill()` takes no later signal from it (`kill()` returns
 * false and sends nothing), so a paused worker never woke up or stopped.
 */
function signal(child: Child, name: "STOP" | "CONT" | "TERM"): void {
  spawnSync("kill", [`-${name}`, String(child.process.pid)]);
}

const alive = (w: Child | null): boolean =>
  w !== null && w.process.exitCode === null && w.process.signalCode === null;

async function stopAll(workers: (Child | null)[]): Promise<void> {
  for (const w of workers) if (alive(w)) signal(w!, "TERM");
  await Promise.all(workers.map((w) => w?.exited));
}

describe("lease mode faults", () => {
  test(`kill -9 of lease workers at random moments: ${JOBS} jobs, completed exactly once`, async () => {
    const t: TestPQ = await openTestPQ("fault_lease_kill", { max: 4 });
    const { sql } = t;
    const schema = t.scratch.schema;
    const workers: (Child | null)[] = Array(WORKERS).fill(null);
    try {
      await createTables(sql, schema);
      const record = t.pq.queue("lease").task("record", () => {}, {
        lease: "1s",
      });
      const ids = await enqueue(record.many, JOBS);
      const start = (slot: number) => {
        workers[slot] = startLeaseWorker(schema, {
          PQ_FAULT_HANDLER_MS: "20",
          PQ_RETRIES: "20",
        });
      };
      for (let slot = 0; slot < WORKERS; slot++) start(slot);
      const began = performance.now();
      let kills = 0, left = JOBS;
      while (left > 0) {
        assert.ok(
          performance.now() - began < DEADLINE_MS,
          `${left} jobs left after ${DEADLINE_MS} ms`,
        );
        await sleep(between(100, 600));
        const live = workers.filter((w): w is Child => alive(w));
        if (live.length > 0 && kills < KILLS) {
          live[between(0, live.length - 1)].process.kill("SIGKILL");
          kills++;
        }
        const [row] = await sql`select count(*)::int as n from ${
          sql(schema)
        }.queue where state <> 'completed'`;
        left = row.n;
        for (let slot = 0; slot < WORKERS; slot++) {
          if (!alive(workers[slot]) && left > 0) {
            await workers[slot]!.exited;
            start(slot);
          }
        }
      }
      const seconds = (performance.now() - began) / 1000;
      await stopAll(workers);
      // Exactly once: each job completed once, its effect written once
      // (through job.complete(tx)); started at least once.
      const [counts] = await sql`select
        (select count(*)::int from ${
        sql(schema)
      }.queue where state = 'completed') as completed,
        (select count(*)::int from ${sql(schema)}.effects) as effects,
        (select count(distinct job_id)::int from ${
        sql(schema)
      }.effects) as jobs,
        (select count(distinct job_id)::int from ${
        sql(schema)
      }.starts) as started,
        (select count(*)::int from ${sql(schema)}.starts) as starts`;
      // Recovery: a job started again at most a lease, a poll and some slack
      // after its previous start ended with its worker.
      const [gaps] = await sql`select max(gap)::float8 as worst,
          count(*)::int as retaken
        from (select extract(epoch from at - lag(at) over (
            partition by job_id order by at)) * 1000 as gap
          from ${sql(schema)}.starts) as g where gap is not null`;
      console.log(
        `  lease kill -9: ${JOBS} jobs, ${WORKERS} processes, ${kills} kills, ` +
          `${seconds.toFixed(1)} s, ${gaps.retaken} jobs taken again, ` +
          `worst recovery ${Math.round(gaps.worst ?? 0)} ms`,
      );
      assert.ok(kills >= 5, `only ${kills} kills: the run was too short`);
      assert.deepEqual({ ...counts, starts: undefined }, {
        completed: JOBS,
        effects: JOBS,
        jobs: JOBS,
        started: JOBS,
        starts: undefined,
      });
      assert.ok(counts.starts >= JOBS);
      assert.ok(
        (gaps.worst ?? 0) < LEASE_MS + POLL_MS + 3_000,
        `a job waited ${gaps.worst} ms to be taken again`,
      );
      assert.equal(ids.length, JOBS);
    } finally {
      for (const w of workers) w?.process.kill("SIGKILL");
      await Promise.all(workers.map((w) => w?.exited));
      await t.close();
    }
  });

  test("a worker paused longer than its lease: the job completes once, by another worker; the late outcome is discarded", async () => {
    const t = await openTestPQ("fault_lease_stop", { max: 4 });
    const { sql } = t;
    const schema = t.scratch.schema;
    const workers: Child[] = [];
    try {
      await createTables(sql, schema);
      const slow = t.pq.queue("lease").task("slow", () => {}, { lease: "1s" });
      const id = await slow({});
      const a = startLeaseWorker(schema, { PQ_SLOW_MS: "2000" });
      workers.push(a);
      await a.line(`STARTED ${id} 1`, 20_000);
      signal(a, "STOP");
      const b = startLeaseWorker(schema, { PQ_SLOW_MS: "200" });
      workers.push(b);
      await b.line(`STARTED ${id} 2`, 20_000);
      await waitFor(
        async () =>
          (await sql`select 1 from ${sql(schema)}.queue
            where id = ${id} and state = 'completed'`).length > 0,
        "the job completed by the second worker",
        20_000,
      );
      await sleep(1_500);
      signal(a, "CONT"); // its handler goes on, too late
      await sleep(3_000);
      const effects = await sql`select attempt from ${sql(schema)}.effects
        where job_id = ${id}`;
      assert.deepEqual(effects.map((r) => r.attempt), [2]);
      const [job] = await sql`select state, attempts from ${
        sql(schema)
      }.queue where id = ${id}`;
      assert.deepEqual({ ...job }, { state: "completed", attempts: 2 });
    } finally {
      for (const w of workers) signal(w, "CONT");
      await stopAll(workers);
      await t.close();
    }
  });

  test("a job whose handler kills its process every time ends failed after maxRetries + 1 attempts", async () => {
    const t = await openTestPQ("fault_lease_poison", { max: 4 });
    const { sql } = t;
    const schema = t.scratch.schema;
    const box: { worker: Child | null } = { worker: null };
    try {
      await createTables(sql, schema);
      const poison = t.pq.queue("lease").task("poison", () => {}, {
        lease: "1s",
        maxRetries: 2,
      });
      const id = await poison({});
      const began = performance.now();
      let starts = 0;
      await waitFor(
        async () => {
          if (!alive(box.worker)) {
            await box.worker?.exited;
            box.worker = startLeaseWorker(schema, { PQ_RETRIES: "2" });
            starts++;
          }
          const [row] = await sql`select state from ${sql(schema)}.queue
          where id = ${id}`;
          return row?.state === "failed";
        },
        "the poison job to fail",
        60_000,
        200,
      );
      const [job] = await sql`select attempts, error from ${
        sql(schema)
      }.queue where id = ${id}`;
      console.log(
        `  poison: failed after ${job.attempts} attempts, ${starts} worker starts, ` +
          `${((performance.now() - began) / 1000).toFixed(1)} s`,
      );
      assert.equal(job.attempts, 3);
      assert.equal(job.error.code, "LEASE_EXPIRED");
    } finally {
      if (alive(box.worker)) box.worker!.process.kill("SIGKILL");
      await box.worker?.exited;
      await t.close();
    }
  });
});
