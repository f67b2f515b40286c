/**
 * Tasks and the worker: enqueue by calling, work() with retries, failed
 * jobs, crashes and a graceful stop.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  PQError,
  type Queue,
  type Task,
  type TaskJob,
  type WorkEvent,
} from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";
import { spawnTs } from "./_spawn.ts";

describe("tasks", () => {
  let t: TestPQ;
  let n = 0;
  const fresh = (): Queue => t.pq.queue(`w${n++}`);
  /** Collects worker events instead of logging them. */
  const collect = () => {
    const events: WorkEvent[] = [];
    return { events, onEvent: (e: WorkEvent) => void events.push(e) };
  };
  /** Worker options that keep expected failures out of the test output. */
  const quiet = { onEvent: () => {} };
  /** The task the worker processes of tests/fixtures/worker.ts run. */
  let record: Task<unknown>;

  before(async () => {
    t = await openTestPQ("tasks");
    await t.sql`create table ${t.sql(t.scratch.schema)}.effects (
      job_id bigint, attempt int, pid int, note text)`;
    record = t.pq.queue("work").task("record", () => {});
  });
  after(async () => {
    await t.close();
  });

  /** The rows written through job.tx for one job. */
  const effects = async (jobId: string) =>
    await t.sql`select attempt, note from ${
      t.sql(t.scratch.schema)
    }.effects where job_id = ${jobId} order by attempt`;

  test("calling a task enqueues it and does not run it", async () => {
    const q = fresh();
    let runs = 0;
    const eat = q.task("eat", () => void runs++);
    const id = await eat({ kind: "Cox" });
    assert.match(id, /^\d+$/);
    await sleep(100);
    assert.equal(runs, 0);
    assert.equal(await q.size(), 1);
  });

  test("work({ burst }) runs it, passing the id the call returned", async () => {
    const q = fresh();
    const seen: [unknown, TaskJob][] = [];
    const eat = q.task("eat", (args: { kind: string }, job) => {
      seen.push([args, job]);
    });
    const id = await eat({ kind: "Cox" });
    const stats = await q.work({ burst: true });
    assert.deepEqual(stats, { done: 1, retried: 0, failed: 0 });
    assert.equal(seen.length, 1);
    const [args, job] = seen[0];
    assert.deepEqual(args, { kind: "Cox" });
    assert.equal(job.id, id);
    assert.equal(job.task, "eat");
    assert.equal(job.queue, q.name);
    assert.equal(job.attempt, 1);
    assert.ok(job.signal instanceof AbortSignal);
    assert.equal(await q.size(), 0);
  });

  test("per-call scheduleAt and expectedAt override the task's defaults exactly", async () => {
    const q = fresh();
    const eat = q.task("eat", () => {}, { scheduleAt: "1h", expectedAt: "2h" });
    const scheduleAt = new Date(Date.now() + 60_000);
    const expectedAt = new Date(Date.now() + 120_000);
    const both = await eat({}, { scheduleAt, expectedAt });
    const one = await eat({}, { expectedAt });
    const none = await eat({});
    const rows = await t.sql`select id::text, schedule_at, expected_at from ${
      t.sql(t.scratch.schema)
    }.queue where id in ${t.sql([both, one, none])}`;
    const byId = new Map(rows.map((r) => [r.id, r]));
    assert.equal(byId.get(both)!.schedule_at.getTime(), scheduleAt.getTime());
    assert.equal(byId.get(both)!.expected_at.getTime(), expectedAt.getTime());
    assert.equal(byId.get(one)!.expected_at.getTime(), expectedAt.getTime());
    const hour = byId.get(one)!.schedule_at.getTime() - Date.now();
    assert.ok(hour > 3_500_000 && hour <= 3_600_000, `default 1h: ${hour}`);
    const twoHours = byId.get(none)!.expected_at.getTime() - Date.now();
    assert.ok(twoHours > 7_100_000 && twoHours <= 7_200_000);
    await q.clear();
  });

  test("ids of consecutive calls increase", async () => {
    const q = fresh();
    const eat = q.task("eat", () => {});
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(BigInt(await eat(i)));
    assert.deepEqual(ids, [...ids].sort((a, b) => (a < b ? -1 : 1)));
    assert.equal(new Set(ids).size, 5);
    await q.clear();
  });

  test("registering the same task name twice on a queue is an error", () => {
    const q = fresh();
    q.task("eat", () => {});
    assert.throws(() => q.task("eat", () => {}), /already has a task/);
    t.pq.queue(`other${n++}`).task("eat", () => {}); // other queues are fine
  });

  test("a handler that throws on one job does not stop the others", async () => {
    const q = fresh();
    const done: number[] = [];
    const eat = q.task("eat", (i: number) => {
      if (i === 2) throw new Error("two is bad");
      done.push(i);
    });
    await eat.many([0, 1, 2, 3, 4].map((args) => ({ args })));
    const { events, onEvent } = collect();
    const stats = await q.work({ burst: true, onEvent });
    assert.deepEqual(stats, { done: 4, retried: 0, failed: 1 });
    assert.deepEqual(done.sort(), [0, 1, 3, 4]);
    const failure = events.find((e) => e.type === "failure");
    assert.ok(failure && failure.type === "failure");
    assert.equal((failure.error as Error).message, "two is bad");
  });

  test("maxRetries: 2 gives exactly 3 runs, then one failed job with the error", async () => {
    const q = fresh();
    const attempts: number[] = [];
    const ids = new Set<string>();
    const eat = q.task("eat", (_: unknown, job) => {
      attempts.push(job.attempt);
      ids.add(job.id);
      throw new Error(`attempt ${job.attempt} failed`);
    }, { maxRetries: 2, retryIn: 0 });
    const id = await eat({ kind: "bad" });
    const { events, onEvent } = collect();
    const stats = await q.work({ burst: true, onEvent });
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual([...ids], [id], "the job keeps its id");
    assert.deepEqual(stats, { done: 0, retried: 2, failed: 1 });
    assert.deepEqual(
      events.map((e) => e.type),
      ["start", "retry", "start", "retry", "start", "failure"],
    );
    const failed = await q.failed();
    assert.equal(failed.length, 1);
    assert.equal(failed[0].id, id);
    assert.equal(failed[0].task, "eat");
    assert.equal(failed[0].attempts, 3);
    assert.deepEqual(failed[0].data, { kind: "bad" });
    assert.equal(failed[0].error?.message, "attempt 3 failed");
    assert.match(failed[0].error?.stack ?? "", /attempt 3 failed/);
    assert.ok(failed[0].failedAt instanceof Date);
    // Failed jobs are not ready: not counted, never returned by get().
    assert.equal(await q.size(), 0);
    assert.equal(await q.get({ block: false }), null);
  });

  test("retries that wait in the scheduled state run exactly maxRetries more times", async () => {
    const q = fresh();
    const attempts: number[] = [];
    const stop = new AbortController();
    const eat = q.task("eat", async (_: unknown, job) => {
      attempts.push(job.attempt);
      await job.tx`select 1`;
      throw new Error(`attempt ${job.attempt}`);
    }, { maxRetries: 2, retryIn: 150 });
    const id = await eat({});
    const stats = await q.work({
      signal: stop.signal,
      onEvent: (e) => e.type === "failure" && stop.abort(),
    });
    assert.deepEqual(attempts, [1, 2, 3]);
    assert.deepEqual(stats, { done: 0, retried: 2, failed: 1 });
    const [failed] = await q.failed();
    assert.equal(failed.id, id);
    assert.equal(failed.attempts, 3);
  });

  test("a retry waits retryIn, and exponential backoff grows", async () => {
    const q = fresh();
    const eat = q.task("eat", () => {
      throw new Error("again");
    }, { maxRetries: 3, retryIn: "10s", backoff: "exponential" });
    const id = await eat({});
    const { events, onEvent } = collect();
    await q.work({ burst: true, onEvent });
    const retry = events.find((e) => e.type === "retry");
    assert.ok(retry && retry.type === "retry");
    assert.ok(retry.retryInMs >= 5_000 && retry.retryInMs <= 10_000);
    const [row] = await t.sql`select state, schedule_at from ${
      t.sql(t.scratch.schema)
    }.queue where id = ${id}`;
    assert.equal(row.state, "scheduled");
    assert.ok(row.schedule_at.getTime() > Date.now() + 3_000);
    await q.clear();
  });

  test("a job of a task this worker never registered stays ready, and the worker goes on", async () => {
    const q = fresh();
    let ran = 0;
    const eat = q.task("eat", () => void ran++);
    // A task that only another process knows: its job is written directly.
    await t.sql`insert into ${
      t.sql(t.scratch.schema)
    }.queue (queue, task, data) values (${q.name}, 'ghost', '{}')`;
    await eat({});
    const stats = await q.work({ burst: true, ...quiet });
    assert.deepEqual(stats, { done: 1, retried: 0, failed: 0 });
    assert.equal(ran, 1);
    assert.deepEqual(await q.failed(), []);
    assert.equal(await q.size({ task: "ghost" }), 1);
    await q.clear();
  });

  test("retry() runs a failed job again", async () => {
    const q = fresh();
    let fail = true;
    const runs: number[] = [];
    const eat = q.task("eat", (_: unknown, job) => {
      runs.push(job.attempt);
      if (fail) throw new Error("not yet");
    });
    const id = await eat({});
    await q.work({ burst: true, ...quiet });
    assert.equal((await q.failed())[0]?.id, id);
    fail = false;
    assert.equal(await q.retry(id), true);
    assert.equal(await q.retry(id), false, "no longer failed");
    assert.deepEqual(await q.work({ burst: true }), {
      done: 1,
      retried: 0,
      failed: 0,
    });
    assert.deepEqual(runs, [1, 1]);
    assert.deepEqual(await q.failed(), []);
    await assert.rejects(q.retry("abc"), TypeError);
  });

  test("clear() removes failed jobs too", async () => {
    const q = fresh();
    const eat = q.task("eat", () => {
      throw new Error("x");
    });
    await eat({});
    await eat({}, { scheduleAt: "1h" });
    await q.put("plain");
    await q.work({ burst: true, ...quiet });
    assert.equal((await q.failed()).length, 1);
    assert.equal(await q.clear(), 3);
    assert.deepEqual(await q.failed(), []);
  });

  test("work() leaves plain jobs for get(), and get() leaves task jobs", async () => {
    const q = fresh();
    let ran = 0;
    const eat = q.task("eat", () => void ran++);
    await q.put("plain");
    await eat({});
    assert.equal(await q.size(), 2);
    assert.deepEqual(await q.work({ burst: true }), {
      done: 1,
      retried: 0,
      failed: 0,
    });
    assert.equal(ran, 1);
    await eat({});
    assert.equal((await q.get({ block: false }))?.data, "plain");
    assert.equal(await q.get({ block: false }), null);
    assert.equal(await q.size(), 1);
    await q.clear();
  });

  test("what a handler writes through job.tx commits with the job, or not at all", async () => {
    const q = fresh();
    const eat = q.task("eat", async (note: string, job) => {
      await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        (job_id, attempt, note) values (${job.id}, ${job.attempt}, ${note})`;
      if (note === "fail") throw new Error("after the write");
    });
    const good = await eat("ok");
    const bad = await eat("fail");
    await q.work({ burst: true, ...quiet });
    assert.equal((await effects(good)).length, 1);
    assert.equal(
      (await effects(bad)).length,
      0,
      "rolled back with the failure",
    );
  });

  test("job.tx cannot be used after the handler returned", async () => {
    const q = fresh();
    let kept: TaskJob | undefined;
    const eat = q.task("eat", (_: unknown, job) => {
      kept = job;
    });
    await eat({});
    await q.work({ burst: true });
    assert.throws(() => kept!.tx`select 1`, /has ended/);
  });

  /** The error a promise rejects with, or null once it resolves. */
  const settled = (promise: Promise<unknown>) =>
    promise.then(() => null, (error) => error);

  test("a nested savepoint whose callback returns an array of statements sends them side by side", async () => {
    const q = fresh();
    const eat = q.task("eat", async (_: unknown, job) => {
      const effect = (note: string) =>
        job.tx`insert into ${job.tx(t.scratch.schema)}.effects
          (job_id, attempt, note) values (${job.id}, ${job.attempt}, ${note})`;
      await job.tx.savepoint(() => [effect("one"), effect("two")]);
    });
    const id = await eat({});
    await q.work({ burst: true });
    assert.deepEqual(
      (await effects(id)).map((row) => row.note).sort(),
      ["one", "two"],
    );
  });

  test("a statement made in the handler but sent after it returned is refused, and writes nothing", async () => {
    const q = fresh();
    let late: Promise<unknown> | undefined;
    const eat = q.task("eat", (_: unknown, job) => {
      // Made now; sent when awaited, after the handler returned.
      const insert = job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        (job_id, attempt, note) values (${job.id}, ${job.attempt}, 'late')`;
      late = settled(sleep(20).then(() => insert));
    });
    const id = await eat({});
    const { events, onEvent } = collect();
    await q.work({ burst: true, onEvent });
    assert.equal(
      (await late as { code?: string } | null)?.code,
      "TRANSACTION_ENDED",
    );
    assert.equal((await effects(id)).length, 0);
    assert.deepEqual(
      events.map((e) => e.type),
      ["start", "success"],
      "the job completed once",
    );
  });

  test("a nested savepoint whose callback fails after the handler returned sends nothing more", async () => {
    const q = fresh();
    const nested: Promise<unknown>[] = [];
    const eat = q.task("eat", (_: unknown, job) => {
      // Not awaited: its callback goes on after the job ended. (Its
      // outcome is kept at once: it settles while the batch still runs.)
      nested.push(settled(job.tx.savepoint(async (sp) => {
        await sleep(50);
        await sp`insert into ${sp(t.scratch.schema)}.effects
          (job_id, attempt, note) values (${job.id}, ${job.attempt}, 'nested')`;
      })));
    });
    const first = await eat({});
    const second = await eat({});
    await q.work({ burst: true });
    // Both in one batch: the first job's late callback failed while the
    // second ran, or after the batch. A `rollback to` sent then would have
    // failed the batch (its jobs would run again) or another transaction.
    assert.equal(nested.length, 2);
    for (const outcome of await Promise.all(nested)) {
      assert.equal((outcome as { code?: string })?.code, "TRANSACTION_ENDED");
    }
    await sleep(100);
    assert.equal((await effects(first)).length, 0);
    assert.equal((await effects(second)).length, 0);
    const { events, onEvent } = collect();
    await q.work({ burst: true, onEvent });
    assert.equal(events.length, 0, "no job ran again");
  });

  test("a handler whose connection is terminated mid-job runs again, its writes not half-applied", async () => {
    const q = fresh();
    let runs = 0;
    const stop = new AbortController();
    let started!: () => void;
    const isStarted = new Promise<void>((resolve) => (started = resolve));
    const eat = q.task("eat", async (_: unknown, job) => {
      runs++;
      await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        (job_id, attempt, note) values (${job.id}, ${job.attempt}, ${
        "run " + runs
      })`;
      if (runs === 1) {
        started();
        await job.tx`select pg_sleep(30)`;
      } else {
        stop.abort();
      }
    });
    const id = await eat({});
    const { events, onEvent } = collect();
    const work = q.work({ signal: stop.signal, onEvent });
    await isStarted;
    const other = postgres(databaseUrl(), { max: 1 });
    try {
      const [row] = await other`select pg_terminate_backend(pid) as ok
        from pg_stat_activity
        where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()`;
      assert.equal(row?.ok, true);
    } finally {
      await other.end();
    }
    const stats = await work;
    assert.equal(runs, 2);
    assert.equal(stats.done, 1);
    const rows = await effects(id);
    assert.deepEqual(rows.map((r) => r.note), ["run 2"]);
    const abort = events.find((e) => e.type === "abort");
    assert.ok(abort?.type === "abort");
    // A lost connection, not a failure of the handler: the driver's error
    // is the cause.
    assert.equal((abort.error as PQError).code, "CONNECTION_LOST");
    assert.ok((abort.error as PQError).cause);
    assert.ok(events.some((e) => e.type === "error"));
  });

  test("a stop waits for a slow handler within the grace period", async () => {
    const q = fresh();
    const eat = q.task("eat", async (_: unknown, job) => {
      await sleep(500);
      await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        (job_id, note) values (${job.id}, 'slow')`;
    });
    const id = await eat({});
    const stop = new AbortController();
    const work = q.work({ signal: stop.signal, gracePeriod: "5s" });
    await sleep(150);
    const start = performance.now();
    stop.abort();
    const stats = await work;
    assert.equal(stats.done, 1);
    assert.ok(since(start) >= 250 && since(start) < 2_000);
    assert.equal((await effects(id)).length, 1);
  });

  test("after the grace period a stuck handler is aborted and its job returns", async () => {
    const q = fresh();
    let aborted: unknown;
    const eat = q.task("eat", async (_: unknown, job) => {
      await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        (job_id, note) values (${job.id}, 'stuck')`;
      job.signal.addEventListener("abort", () => {
        aborted = job.signal.reason;
      });
      await new Promise(() => {}); // never returns
    });
    const id = await eat({});
    const stop = new AbortController();
    const { events, onEvent } = collect();
    const work = q.work({ signal: stop.signal, gracePeriod: 300, onEvent });
    await sleep(150);
    const start = performance.now();
    stop.abort();
    const stats = await work;
    assert.ok(since(start) >= 250 && since(start) < 2_000, `${since(start)}`);
    assert.deepEqual(stats, { done: 0, retried: 0, failed: 0 });
    assert.ok(aborted instanceof PQError);
    assert.equal(aborted.code, "FORCED_STOP");
    const abort = events.find((e) => e.type === "abort");
    assert.ok(abort?.type === "abort");
    assert.equal((abort.error as PQError).code, "FORCED_STOP");
    assert.equal((await effects(id)).length, 0, "its write rolled back");
    assert.equal(await q.size(), 1, "the job is back");
    await q.clear();
  });

  test("a handler stuck in a long statement is ended after the grace period", async () => {
    const q = fresh();
    const eat = q.task("eat", async (_: unknown, job) => {
      await job.tx`select pg_sleep(60)`;
    });
    await eat({});
    const stop = new AbortController();
    const work = q.work({ signal: stop.signal, gracePeriod: 200, ...quiet });
    await sleep(300);
    const start = performance.now();
    stop.abort();
    await work;
    assert.ok(since(start) < 5_000, `stopped after ${since(start)} ms`);
    assert.equal(await q.size(), 1, "the job is back");
    await q.clear();
  });

  test("concurrency: 4 runs four slow handlers at the same time", async () => {
    const q = fresh();
    let running = 0, most = 0;
    const eat = q.task("eat", async () => {
      most = Math.max(most, ++running);
      await sleep(300);
      running--;
    });
    await eat.many(Array.from({ length: 8 }, (_, i) => ({ args: i })));
    const stats = await q.work({ burst: true, concurrency: 4 });
    assert.equal(stats.done, 8);
    assert.equal(most, 4);
  });

  test("a waiting worker starts a job within milliseconds of its put", async () => {
    const q = fresh();
    const stop = new AbortController();
    const latencies: number[] = [];
    let putAt = 0;
    const eat = q.task("eat", () => {
      latencies.push(performance.now() - putAt);
      if (latencies.length === 5) stop.abort();
    });
    const work = q.work({ signal: stop.signal });
    for (let i = 0; i < 5; i++) {
      await sleep(100);
      putAt = performance.now();
      await eat(i);
    }
    await work;
    assert.equal(latencies.length, 5);
    assert.ok(Math.max(...latencies) < 250, `latencies ${latencies}`);
  });

  test("a task enqueued with task.with(tx) exists only if the transaction commits", async () => {
    const q = fresh();
    const eat = q.task("eat", () => {});
    await t.sql.begin((tx) => eat.with(tx)({ kind: "kept" }));
    await assert.rejects(t.sql.begin(async (tx) => {
      await eat.with(tx).many([{ args: 1 }, { args: 2 }]);
      throw new Error("undo");
    }));
    assert.equal(await q.size(), 1);
    assert.equal((await q.work({ burst: true })).done, 1);
  });

  test("two workers in one process share a queue, each job done once", async () => {
    const q = fresh();
    const seen: string[] = [];
    const eat = q.task("eat", (_: number, job) => void seen.push(job.id));
    await eat.many(Array.from({ length: 300 }, (_, i) => ({ args: i })));
    const [a, b] = await Promise.all([
      q.work({ burst: true, concurrency: 3 }),
      q.work({ burst: true, concurrency: 2 }),
    ]);
    assert.equal(a.done + b.done, 300);
    assert.equal(seen.length, 300);
    assert.equal(new Set(seen).size, 300);
  });

  test("1,000 jobs over two worker processes are each done exactly once", async () => {
    const q = t.pq.queue("work");
    await record.many(Array.from({ length: 1_000 }, (_, i) => ({ args: i })));
    const env = { DATABASE_URL: databaseUrl() };
    const workers = [0, 1].map(() =>
      spawnTs("tests/fixtures/worker.ts", [t.scratch.schema, "burst"], env)
    );
    const codes = await Promise.all(workers.map((w) => w.exited));
    assert.deepEqual(codes, [0, 0]);
    const done = workers.map((w) =>
      Number(w.lines.find((l) => l.startsWith("DONE"))?.split(" ")[1])
    );
    assert.equal(done[0] + done[1], 1_000);
    const [row] = await t.sql`select count(*)::int as n,
      count(distinct job_id)::int as jobs from ${
      t.sql(t.scratch.schema)
    }.effects where pid is not null`;
    assert.equal(row.n, 1_000);
    assert.equal(row.jobs, 1_000);
    assert.equal(await q.size(), 0);
    await t.sql`delete from ${t.sql(t.scratch.schema)}.effects`;
  });

  test("a worker process killed mid-job leaves the job to run again", async () => {
    const q = t.pq.queue("work");
    const id = await record({});
    const env = { DATABASE_URL: databaseUrl() };
    const hung = spawnTs(
      "tests/fixtures/worker.ts",
      [t.scratch.schema, "hang"],
      env,
    );
    assert.equal(await hung.line("STARTED"), `STARTED ${id}`);
    hung.process.kill("SIGKILL");
    await hung.exited;
    const worker = spawnTs("tests/fixtures/worker.ts", [
      t.scratch.schema,
      "burst",
    ], env);
    assert.equal(await worker.exited, 0);
    assert.equal(await worker.line("DONE"), "DONE 1");
    const rows = await effects(id);
    assert.equal(rows.length, 1, "the killed run's write rolled back");
    assert.equal(await q.size(), 0);
  });
});
