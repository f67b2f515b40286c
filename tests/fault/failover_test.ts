/**
 * Fault: the primary dies (SIGKILL of the postmaster and all its backends,
 * as when its machine fails) in the middle of a run, and its streaming
 * standby is promoted. Producers (here) and worker processes connect with
 * one multi-host URL and must find the new primary by themselves, and so
 * must a getter that waits across the failover.
 *
 * With synchronous replication every acknowledged put must be done exactly
 * once, and no acknowledged completion may be done again. With asynchronous
 * replication the same run measures the loss window: acknowledged puts that
 * were gone after the failover, and acknowledged completions that were
 * rolled back and done again. On the new primary every job's effect is still
 * written at most once, because the effect and the job's removal commit
 * together.
 *
 * Task jobs in transaction mode (effects written through `job.tx`).
 *
 * Sizes: PQ_FAILOVER_JOBS (acknowledged puts, default 10,000),
 * PQ_FAULT_WORKERS (default 3), PQ_FAILOVER_DETECT_MS (how long the standby
 * waits before it is promoted, as a failure detector would; default 1,000).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type Job } from "../../mod.ts";
import { sleep } from "../_pq.ts";
import type { Child } from "../_spawn.ts";
import {
  assertAlive,
  createEffects,
  envNumber,
  startWorker,
  stopWorker,
  waitFor,
  workerFailures,
  workerResult,
} from "./_fault.ts";
import { startReplicatedPair, withClient } from "./_replication.ts";

const JOBS = envNumber("PQ_FAILOVER_JOBS", 10_000);
const WORKERS = envNumber("PQ_FAULT_WORKERS", 3);
const DETECT_MS = envNumber("PQ_FAILOVER_DETECT_MS", 1_000);
/** Jobs per put, and the pause between puts of one producer. */
const CHUNK = 10;
const PACE_MS = 5;
const PRODUCERS = 2;
/**
 * `primary`, not `read-write`: postgres.js 3.4.9 takes `read-write` to mean
 * `default_transaction_read_only = off`, which a hot standby of PostgreSQL
 * 14+ reports, so it connects to the standby on every other reconnect (see
 * the test at the end of this file, and RELIABILITY.md).
 */
const ATTRS = "primary";
const SCHEMA = "fault_failover";
/**
 * How long the getter may take to wake after the put that should wake it:
 * its listener gives a connect attempt up after connect_timeout (5 s here)
 * plus 5 s, if postgres.js lost its first statement (src/listener.ts).
 */
const GETTER_WAIT_MS = 20_000;
/**
 * A put that has not settled after this long is given up as stuck: with
 * several hosts, postgres.js 3.4.9 can lose the first statement of a new
 * connection that dies (porsager/postgres#1174). Its outcome is unknown.
 */
const PUT_DEADLINE_MS = 15_000;
const STUCK = new Error("it did not settle in time");

/** `promise`, or a rejection with STUCK after `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => timer = setTimeout(reject, ms, STUCK)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What one failover run measured. */
interface Figures {
  version: string;
  acked: number;
  ackedBeforeKill: number;
  doneBeforeKill: number;
  /** WAL bytes the standby had not flushed just before the kill. */
  lagBytes: number;
  /** Puts that failed: their jobs may or may not exist. */
  unknown: number;
  /** ... of which never settled (given up after PUT_DEADLINE_MS). */
  stuck: number;
  /** ... of which were done anyway (they had committed). */
  unknownDone: number;
  /** Acknowledged puts whose job was gone after the failover. */
  lostPuts: number;
  /** Acknowledged completions rolled back and done again. */
  redone: number;
  /** Effects written twice for one job (by argument or by id). */
  doubled: string[];
  /** Effects of jobs nobody put. */
  strays: number;
  promoteMs: number;
  /** Per worker process: first effect on the new primary after promotion. */
  resumeMs: number[];
  /** From promotion to the first put on the new primary resolving. */
  firstPutMs: number;
  /** From that put to the waiting getter returning its job. */
  getterMs: number;
  workerErrors: number;
  codes: (number | string)[];
  failures: string[];
  totalMs: number;
}

async function failover(synchronous: boolean): Promise<Figures> {
  const began = performance.now();
  const pair = await startReplicatedPair({ synchronous });
  const url = pair.multiHostUrl(ATTRS);
  const sql = postgres(url, { max: 4, onnotice: () => {}, connect_timeout: 5 });
  // The test's own PQ: producers, and a getter that waits across the
  // failover, woken only by NOTIFY or a listener's reconnect.
  const pq = createPQ(sql, { schema: SCHEMA, pollInterval: "10m" });
  const workers: Child[] = [];
  let producing = true;
  try {
    await pq.create();
    await createEffects(sql, SCHEMA);
    const record = pq.queue("work").task("record", () => {});
    for (let slot = 0; slot < WORKERS; slot++) {
      workers.push(startWorker(url, SCHEMA, {
        mode: "run",
        app: `pq fault failover ${slot}`,
        handlerMs: 5,
        report: true,
      }));
    }
    await Promise.all(workers.map((w) => w.line("READY", 60_000)));

    // Producers: jobs are named by their argument, 0, 1, 2, ... A put that
    // fails has an unknown outcome (it may have committed just before the
    // kill); it is not retried, and its jobs are tracked apart.
    const acked: number[] = [];
    const unknown: number[] = [];
    let next = 0, inFlight = 0, stuck = 0;
    const produce = async () => {
      while (producing && acked.length < JOBS) {
        // Exactly JOBS acknowledged: count the jobs of puts under way.
        const n = Math.min(CHUNK, JOBS - acked.length - inFlight);
        if (n <= 0) {
          await sleep(PACE_MS);
          continue;
        }
        const args = Array.from({ length: n }, () => next++);
        inFlight += n;
        try {
          await withDeadline(
            record.many(args.map((arg) => ({ args: arg }))),
            PUT_DEADLINE_MS,
          );
          acked.push(...args);
        } catch (error) {
          if (error === STUCK) stuck += n;
          unknown.push(...args);
          await sleep(50);
        } finally {
          inFlight -= n;
        }
        await sleep(PACE_MS);
      }
    };
    const producers = Array.from({ length: PRODUCERS }, produce);

    const probe = pq.queue("probe");
    let got: Promise<Job<unknown> | null> | undefined;
    const direct = postgres(pair.primaryUrl, { max: 1, onnotice: () => {} });
    let lagBytes = 0, doneBeforeKill = 0;
    try {
      await waitFor(
        () => {
          assertAlive(workers);
          return acked.length >= JOBS * 0.4;
        },
        "40% of the puts",
        120_000,
        20,
      );
      // A getter waits on an empty queue across the failover. Its failure
      // is kept for later, not left unhandled.
      got = probe.get({ timeout: "120s" }).catch((error) => {
        throw new Error("the waiting get() failed", { cause: error });
      });
      got.catch(() => {});
      // Waiting for sure (registered, so puts notify it) before the kill, so
      // that it lives through the failover as a waiting getter. (A take in
      // flight at the kill is taken again: src/take_retry.ts.)
      await waitFor(
        async () =>
          (await direct`select 1 from ${direct(SCHEMA)}.pq_waiting
            where queue = 'probe' and expires_at > now()`).length > 0,
        "the getter to wait",
        30_000,
        20,
      );
      await waitFor(
        () => {
          assertAlive(workers);
          return acked.length >= JOBS / 2;
        },
        "half of the puts",
        120_000,
        20,
      );
      [{ done: doneBeforeKill, lag: lagBytes }] = await direct`select
        (select count(*)::int from ${direct(SCHEMA)}.effects) as done,
        (select coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), flush_lsn),
          0)::int8 from pg_stat_replication) as lag`;
    } finally {
      await direct.end({ timeout: 1 });
    }

    const killedWall = Date.now();
    const linesAtKill = workers.map((w) => w.lines.length);
    await pair.killPrimary();
    const ackedBeforeKill = acked.length;
    await sleep(DETECT_MS);
    const promoting = performance.now();
    await pair.promote();
    const promotedAt = performance.now();
    const promotedWall = Date.now();

    // A put after the promotion must wake the getter.
    await waitFor(
      () =>
        withDeadline(probe.put("after the failover"), PUT_DEADLINE_MS)
          .then(() => true, () => false),
      "a put to succeed on the new primary",
      60_000,
      100,
    );
    const putAt = performance.now();
    const job = await withDeadline(got!, GETTER_WAIT_MS).catch((error) => {
      if (error === STUCK) return undefined;
      throw error;
    });
    const getterMs = performance.now() - putAt;
    if (job === undefined) {
      // Not woken: show what the new primary knows of this PQ's listener.
      const seen = await withClient(pair.standbyUrl, async (s) => ({
        listeners: await s`select state, left(query, 60) as query
          from pg_stat_activity where application_name = 'pq listener'`,
        registered: await s`select queue, expires_at > now() as live
          from ${s(SCHEMA)}.pq_waiting`,
      }));
      assert.fail(
        `the getter was not woken ${GETTER_WAIT_MS} ms after a put on the ` +
          `new primary; there: ${JSON.stringify(seen)}`,
      );
    }
    assert.equal(job?.data, "after the failover");

    const resumed = postgres(pair.standbyUrl, { max: 1, onnotice: () => {} });
    try {
      // Each worker process writes effects on the new primary.
      const pids = workers.map((w) => w.process.pid!);
      const resumeMs = await waitFor(
        async () => {
          assertAlive(workers);
          const rows = await resumed`select pid,
            extract(epoch from min(written_at)) * 1000 as first
            from ${resumed(SCHEMA)}.effects
            where written_at > to_timestamp(${promotedWall / 1000})
            group by pid`;
          const first = new Map(rows.map((r) => [r.pid, Number(r.first)]));
          return pids.every((p) => first.has(p))
            ? pids.map((p) => first.get(p)! - promotedWall)
            : null;
        },
        "every worker process to do a job on the new primary",
        60_000,
        50,
      );
      await withDeadline(Promise.all(producers), 120_000).catch((error) => {
        throw error === STUCK
          ? new Error("the producers did not put every job in 120 s")
          : error;
      });
      await waitFor(
        async () => {
          assertAlive(workers);
          const [{ left }] = await resumed`select count(*)::int as left
            from ${resumed(SCHEMA)}.queue`;
          return left === 0;
        },
        "the queue to be empty",
        120_000,
        250,
      );
      const codes = await Promise.all(workers.map((w) => stopWorker(w)));
      const workerErrors = workers.reduce(
        (sum, w) => sum + (workerResult(w)?.errors ?? 0),
        0,
      );

      // Completions acknowledged before the kill (printed before it).
      const okBeforeKill = workers.flatMap((w, i) =>
        w.lines.slice(0, linesAtKill[i])
          .filter((l) => l.startsWith("OK "))
          .map((l) => Number(l.slice(3)))
      );
      const [counts] = await resumed`
        with e as (select * from ${resumed(SCHEMA)}.effects),
        acked as (select unnest(${acked}::int8[]) as arg),
        unknown as (select unnest(${unknown}::int8[]) as arg),
        ok as (select unnest(${okBeforeKill}::int8[]) as arg)
        select
          (select count(*)::int from acked
            where not exists (select 1 from e where e.arg = acked.arg))
            as lost_puts,
          (select count(*)::int from ok where not exists (select 1 from e
            where e.arg = ok.arg
              and e.written_at <= to_timestamp(${killedWall / 1000})))
            as redone,
          (select count(distinct arg)::int from e
            where arg in (select arg from unknown)) as unknown_done,
          (select count(*)::int from e where arg is null
            or (arg not in (select arg from acked)
              and arg not in (select arg from unknown))) as strays,
          (select coalesce(array_agg(d), '{}') from (
            select 'arg ' || arg || ' x' || count(*) as d from e
              group by arg having count(*) > 1
            union all
            select 'id ' || job_id || ' x' || count(*) from e
              group by job_id having count(*) > 1
            limit 10) as doubled) as doubled`;
      return {
        version: pair.version,
        acked: acked.length,
        ackedBeforeKill,
        doneBeforeKill,
        lagBytes: Number(lagBytes),
        unknown: unknown.length,
        stuck,
        unknownDone: counts.unknown_done,
        lostPuts: counts.lost_puts,
        redone: counts.redone,
        doubled: counts.doubled,
        strays: counts.strays,
        promoteMs: promotedAt - promoting,
        resumeMs,
        firstPutMs: putAt - promotedAt,
        getterMs,
        workerErrors,
        codes,
        failures: workers.flatMap(workerFailures),
        totalMs: performance.now() - began,
      };
    } finally {
      await resumed.end({ timeout: 1 });
    }
  } finally {
    producing = false;
    for (const w of workers) w.process.kill("SIGKILL");
    await Promise.all(workers.map((w) => w.exited));
    await pq.close();
    await sql.end({ timeout: 1 });
    await pair.stop();
  }
}

function summary(mode: string, f: Figures): string {
  const ms = (n: number) => `${Math.round(n)} ms`;
  return `  failover (${mode}), PostgreSQL ${f.version}: ${f.acked} puts ` +
    `acknowledged (${f.ackedBeforeKill} before the kill, ${f.doneBeforeKill} ` +
    `done; standby ${f.lagBytes} WAL bytes behind), ${WORKERS} worker ` +
    `processes; promoted ${ms(DETECT_MS)} after the kill in ` +
    `${ms(f.promoteMs)}; workers resumed ` +
    `${f.resumeMs.map(ms).join(", ")} after the promotion; first put ` +
    `${ms(f.firstPutMs)} after it, waiting getter woken ${ms(f.getterMs)} ` +
    `after that put; ${f.workerErrors} worker errors recovered; ` +
    `${f.unknown} jobs' puts failed (${f.stuck} of them stuck; ` +
    `${f.unknownDone} of them done); ` +
    `acknowledged puts lost: ${f.lostPuts}, acknowledged completions done ` +
    `again: ${f.redone}; ${(f.totalMs / 1000).toFixed(1)} s`;
}

/** What holds with either kind of replication. */
function assertRecovered(f: Figures): void {
  assert.deepEqual(f.codes, f.codes.map(() => 0), "workers stop cleanly");
  assert.deepEqual(f.failures, [], "no job failed");
  assert.deepEqual(f.doubled, [], "no effect is written twice");
  assert.equal(f.strays, 0, "no effect of a job nobody put");
  assert.equal(f.acked, JOBS);
  assert.ok(f.ackedBeforeKill < JOBS, "the kill came in the middle");
  // Generous bounds: the backoff of a worker slot after errors is at most
  // 5 s, the listener's reconnect delay at most 5 s.
  for (const ms of f.resumeMs) {
    assert.ok(ms < 30_000, `a worker resumed ${ms} ms after the promotion`);
  }
  assert.ok(f.firstPutMs < 30_000, `first put ${f.firstPutMs} ms`);
}

test(`failover with synchronous replication: ${JOBS} jobs, no acknowledged put lost, each effect exactly once`, async () => {
  const f = await failover(true);
  console.log(summary("synchronous", f));
  assertRecovered(f);
  assert.equal(f.lostPuts, 0, "no acknowledged put is lost");
  assert.equal(f.redone, 0, "no acknowledged completion is done again");
});

test(`failover with asynchronous replication: ${JOBS} jobs, the loss window measured`, async () => {
  const f = await failover(false);
  console.log(summary("asynchronous", f));
  assertRecovered(f);
});

test("a multi-host URL with target_session_attrs=primary reaches only the primary, also on reconnects", async () => {
  const pair = await startReplicatedPair({ synchronous: false });
  const landings = async (attrs: string) => {
    // Each query on a fresh connection: the idle timeout closes the last.
    const sql = postgres(pair.multiHostUrl(attrs), {
      max: 1,
      idle_timeout: 0.05,
      onnotice: () => {},
    });
    const found: boolean[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const [{ standby }] = await sql`select pg_is_in_recovery() as standby`;
        found.push(standby);
        await sleep(150);
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
    return found.filter(Boolean).length;
  };
  try {
    assert.equal(await landings("primary"), 0);
    // Not asserted (it is postgres.js's to fix), but shown.
    const readWrite = await landings("read-write");
    console.log(
      `  target_session_attrs=read-write: ${readWrite} of 6 connections ` +
        `went to the standby (postgres.js 3.4.9, PostgreSQL ${pair.version})`,
    );
    await withClient(pair.standbyUrl, async (s) => {
      const [{ standby }] = await s`select pg_is_in_recovery() as standby`;
      assert.equal(standby, true, "the standby is one");
    });
  } finally {
    await pair.stop();
  }
});
