/**
 * The job lifecycle: lease mode (claims, heartbeats, lost leases, recovery,
 * job.complete(tx)), cancellation in every state and mode, snooze,
 * progress, lookup, waitFor, results and retention.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  createPQ,
  type JobInfo,
  type PQ,
  PQError,
  type Queue,
  type WorkEvent,
} from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";

describe("lifecycle", () => {
  let t: TestPQ;
  /** A PQ on the same table that keeps completed jobs. */
  let kept: PQ;
  let n = 0;
  const fresh = (pq?: PQ): Queue => (pq ?? t.pq).queue(`l${n++}`);
  const quiet = { onEvent: () => {} };
  const row = async (id: string) =>
    (await t.sql`select state, attempts, lease_token::text as token,
        lease_until, progress::text, result::text, error::text
      from ${t.sql(t.scratch.schema)}.queue where id = ${id}`)[0];
  /** Resolves when `check` returns true, polling every 20 ms. */
  const until = async (check: () => Promise<boolean> | boolean, ms = 5_000) => {
    const start = performance.now();
    while (!await check()) {
      if (since(start) > ms) throw new Error(`not within ${ms} ms`);
      await sleep(20);
    }
  };

  before(async () => {
    t = await openTestPQ("lifecycle");
    await t.sql`create table ${t.sql(t.scratch.schema)}.effects (
      job_id bigint, note text)`;
    kept = createPQ(t.sql, {
      schema: t.scratch.schema,
      keep: { completed: "1h" },
    });
  });
  after(async () => {
    await kept.close();
    await t.close();
  });

  const effects = async (id: string) =>
    (await t.sql`select note from ${t.sql(t.scratch.schema)}.effects
      where job_id = ${id} order by note`).map((r) => r.note);

  describe("lease mode", () => {
    test("the claim commits at once and the handler runs outside any transaction", async () => {
      const q = fresh(kept);
      let seen: unknown = "unset";
      let state: string | undefined;
      const long = q.task("long", async (_: unknown, job) => {
        seen = job.tx;
        state = (await row(job.id)).state; // seen from another connection
        return { ok: true };
      }, { lease: "2s" });
      const id = await long({});
      assert.deepEqual(await q.work({ burst: true }), {
        done: 1,
        retried: 0,
        failed: 0,
      });
      assert.equal(seen, undefined);
      assert.equal(state, "running");
      const done = await q.job(id);
      assert.equal(done?.state, "completed");
      assert.deepEqual(done?.result, { ok: true });
      assert.equal(done?.attempt, 1);
      assert.equal(done?.maxAttempts, 1);
      assert.ok(done?.startedAt instanceof Date);
      assert.ok(done?.finishedAt instanceof Date);
    });

    test("a job running longer than ten leases keeps its lease, and no other worker takes it", async () => {
      const q = fresh();
      const runs: string[] = [];
      const leases: number[] = [];
      const slow = q.task("slow", async (_: unknown, job) => {
        runs.push(job.id);
        for (let i = 0; i < 12; i++) {
          await sleep(100);
          leases.push((await row(job.id)).lease_until.getTime());
        }
        // Meanwhile, a slow statement on the caller's pool changes nothing.
        await t.sql`select pg_sleep(0.3)`;
      }, { lease: "1s" });
      const stop = new AbortController();
      const second = t.pq.queue(q.name); // same registry: another slot loop
      const a = q.work({ signal: stop.signal, onEvent: () => {} });
      const b = second.work({ signal: stop.signal, onEvent: () => {} });
      const id = await slow({});
      await until(async () => (await q.job(id)) === null, 8_000);
      stop.abort();
      const [sa, sb] = await Promise.all([a, b]);
      assert.deepEqual(runs, [id], "one run only");
      assert.equal(sa.done + sb.done, 1);
      assert.ok(leases.at(-1)! > leases[0] + 500, "the lease moved on");
    });

    test("a lease taken by another worker aborts the handler with LEASE_LOST and nothing is written", async () => {
      const q = fresh();
      let reason: unknown;
      const job = q.task("j", async (_: unknown, j) => {
        await t.sql`update ${t.sql(t.scratch.schema)}.queue
          set lease_token = 42 where id = ${j.id}`; // "another worker"
        await new Promise<void>((resolve) =>
          j.signal.addEventListener("abort", () => resolve(), { once: true })
        );
        reason = j.signal.reason;
        throw new Error("too late");
      }, { lease: "1s", maxRetries: 3 });
      const id = await job({});
      const events: WorkEvent[] = [];
      const stats = await q.work({
        burst: true,
        onEvent: (e) => void events.push(e),
      });
      assert.ok(reason instanceof PQError);
      assert.equal(reason.code, "LEASE_LOST");
      assert.deepEqual(stats, { done: 0, retried: 0, failed: 0 });
      const abort = events.find((e) => e.type === "abort");
      assert.equal((abort as { error: PQError }).error.code, "LEASE_LOST");
      const r = await row(id);
      assert.equal(r.state, "running");
      assert.equal(r.token, "42", "the other worker's claim is untouched");
      await q.clear();
    });

    test("a job whose worker died is taken again after its lease, and fails with LEASE_EXPIRED after its attempts", async () => {
      const q = fresh();
      const attempts: number[] = [];
      q.task("crashy", (_: unknown, job) => void attempts.push(job.attempt), {
        lease: "1s",
        maxRetries: 1,
      });
      // A worker that claimed the job and died: its lease ends soon.
      const [{ id }] = await t.sql`insert into ${
        t.sql(t.scratch.schema)
      }.queue (queue, task, data, state, attempts, lease_until, lease_token,
        max_attempts) values (${q.name}, 'crashy', '{}', 'running', 1,
        statement_timestamp() + interval '300 ms', 7, 2) returning id::text`;
      const start = performance.now();
      const stop = new AbortController();
      const work = q.work({
        signal: stop.signal,
        onEvent: (e) => e.type === "success" && stop.abort(),
      });
      await work;
      assert.deepEqual(attempts, [2], "taken again as attempt 2");
      assert.ok(since(start) < 2_500, `after ${since(start)} ms`);
      // Once more, with the attempts used up: it fails.
      const [{ id: spent }] = await t.sql`insert into ${
        t.sql(t.scratch.schema)
      }.queue (queue, task, data, state, attempts, lease_until, lease_token,
        max_attempts) values (${q.name}, 'crashy', '{}', 'running', 2,
        statement_timestamp() - interval '1 ms', 8, 2) returning id::text`;
      await q.work({ burst: true, ...quiet });
      const failed = await q.job(spent);
      assert.equal(failed?.state, "failed");
      assert.equal(failed?.error?.code, "LEASE_EXPIRED");
      assert.notEqual(id, spent);
      await q.clear();
    });

    test("job.complete(tx) completes the job together with the caller's writes, or not at all", async () => {
      const q = fresh(kept);
      const schema = t.scratch.schema;
      const pay = q.task("pay", async (args: { ok: boolean }, job) => {
        await t.sql.begin(async (tx) => {
          await tx`insert into ${
            tx(schema)
          }.effects values (${job.id}, 'paid')`;
          await job.complete(tx, { receipt: job.id });
          if (!args.ok) throw new Error("rolled back");
        }).catch(() => {});
      }, { lease: "1s" });
      const good = await pay({ ok: true });
      const bad = await pay({ ok: false });
      await q.work({ burst: true, ...quiet });
      assert.deepEqual(await effects(good), ["paid"]);
      const done = await q.job(good);
      assert.equal(done?.state, "completed");
      assert.deepEqual(done?.result, { receipt: good });
      // Rolled back: no effect, and the job is not completed; its lease runs
      // out and it is taken again (it stays running until then).
      assert.deepEqual(await effects(bad), []);
      assert.equal((await q.job(bad))?.state, "running");
      await q.clear();
    });
  });

  describe("cancel", () => {
    test("ready and scheduled jobs are cancelled at once; failed ones removed; finished and unknown ones are null", async () => {
      const q = fresh();
      const ready = await q.put(1);
      const later = await q.put(2, { scheduleAt: "1h" });
      assert.equal(await q.cancel(ready), "ready");
      assert.equal(await q.cancel(later), "scheduled");
      assert.equal((await q.job(ready))?.state, "cancelled");
      assert.equal((await q.job(later))?.state, "cancelled");
      assert.equal(await q.cancel(ready), null, "already cancelled");
      assert.equal(await q.get({ block: false }), null);
      const failing = q.task("f", () => {
        throw new Error("no");
      });
      const failed = await failing({});
      await q.work({ burst: true, ...quiet });
      assert.equal(await q.cancel(failed), "failed");
      assert.equal(await q.job(failed), null, "removed");
      assert.equal(await q.cancel("987654321"), null);
      await assert.rejects(q.cancel("nope"), TypeError);
      await q.clear();
    });

    for (const mode of ["transaction", "lease"] as const) {
      test(`a running ${mode}-mode job is aborted within a second, its writes undone in transaction mode, and ends cancelled`, async () => {
        const q = fresh();
        let started!: () => void;
        const running = new Promise<void>((resolve) => (started = resolve));
        let reason: unknown;
        const stuck = q.task("stuck", async (_: unknown, job) => {
          if (job.tx) {
            await job.tx`insert into ${
              job.tx(t.scratch.schema)
            }.effects values (${job.id}, 'half')`;
          }
          job.signal.addEventListener("abort", () => {
            reason = job.signal.reason;
          });
          started();
          await new Promise(() => {}); // ignores the signal
        }, mode === "lease" ? { lease: "2s" } : {});
        const id = await stuck({});
        const stop = new AbortController();
        const events: WorkEvent[] = [];
        const work = q.work({
          signal: stop.signal,
          onEvent: (e) => {
            events.push(e);
            if (e.type === "cancel") stop.abort();
          },
        });
        await running;
        const start = performance.now();
        assert.equal(await q.cancel(id), "running");
        await work;
        assert.ok(since(start) < 1_500, `after ${since(start)} ms`);
        assert.equal((reason as PQError)?.code, "CANCELLED");
        assert.equal((await q.job(id))?.state, "cancelled");
        assert.deepEqual(await effects(id), [], "nothing of it was kept");
        assert.ok(events.some((e) => e.type === "cancel"));
        await q.clear();
      });
    }

    test("behind a pooler (no LISTEN), a running job is cancelled within the poll interval", async () => {
      const pq = createPQ(t.sql, {
        schema: t.scratch.schema,
        listen: false,
        pollInterval: "200ms",
      });
      try {
        const q = fresh(pq);
        let started!: () => void;
        const running = new Promise<void>((resolve) => (started = resolve));
        const wait = q.task("wait", async (_: unknown, job) => {
          started();
          await new Promise((resolve) =>
            job.signal.addEventListener("abort", resolve)
          );
        }, { lease: "5s" });
        const id = await wait({});
        const stop = new AbortController();
        const work = q.work({
          signal: stop.signal,
          onEvent: (e) => e.type === "cancel" && stop.abort(),
        });
        await running;
        const start = performance.now();
        assert.equal(await q.cancel(id), "running");
        await work;
        assert.ok(since(start) < 1_000, `after ${since(start)} ms`);
        assert.equal((await q.job(id))?.state, "cancelled");
      } finally {
        await pq.close();
      }
    });

    test("a job cancelled while its worker's transaction was gone is not run when taken again", async () => {
      const q = fresh();
      let runs = 0;
      q.task("once", () => void runs++);
      const [{ id }] = await t.sql`insert into ${
        t.sql(t.scratch.schema)
      }.queue (queue, task, data) values (${q.name}, 'once', '{}')
        returning id::text`;
      // A transaction holds the job (as a worker that then dies would).
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const holder = t.sql.begin(async (tx) => {
        await tx`select 1 from ${
          tx(t.scratch.schema)
        }.queue where id = ${id} for update`;
        await held;
        throw new Error("the worker died");
      }).catch(() => {});
      await sleep(50);
      assert.equal(await q.cancel(id), "running", "cancel does not wait");
      release();
      await holder;
      await q.work({ burst: true, ...quiet });
      assert.equal(runs, 0);
      assert.equal((await q.job(id))?.state, "cancelled");
    });

    test("a plain job cancelled while a get() in a transaction held it is not returned by the next get()", async () => {
      const q = fresh();
      const id = await q.put("held");
      const after = await q.put("next");
      await q.transaction(async (qq) => {
        assert.equal((await qq.get({ block: false }))?.id, id);
        assert.equal(await q.cancel(id), "running");
        throw new Error("roll back");
      }).catch(() => {});
      assert.equal((await q.get({ block: false }))?.id, after);
      assert.equal((await q.job(id))?.state, "cancelled");
      assert.equal(await q.get({ block: false }), null);
    });

    test("cancel racing completion leaves a job either completed or cancelled, never both", async () => {
      const q = fresh(kept);
      const schema = t.scratch.schema;
      const quick = q.task("quick", async (_: unknown, job) => {
        await job.tx`insert into ${
          job.tx(schema)
        }.effects values (${job.id}, 'done')`;
        await sleep(Math.random() * 10);
      });
      const ids = await quick.many(
        Array.from({ length: 30 }, () => ({ args: {} })),
      );
      const stop = new AbortController();
      const work = q.work({ signal: stop.signal, concurrency: 3, ...quiet });
      await Promise.all(ids.map(async (id, i) => {
        await sleep(i * 3);
        await q.cancel(id);
      }));
      await until(async () => {
        const states = await Promise.all(ids.map((id) => q.job(id)));
        return states.every((s) =>
          s?.state === "completed" || s?.state === "cancelled"
        );
      });
      stop.abort();
      await work;
      for (const id of ids) {
        const state = (await q.job(id))?.state;
        const written = await effects(id);
        if (state === "completed") assert.deepEqual(written, ["done"]);
        else {
          assert.equal(state, "cancelled");
          assert.deepEqual(written, [], `job ${id}: cancelled without effects`);
        }
      }
    });
  });

  describe("snooze and progress", () => {
    for (const mode of ["transaction", "lease"] as const) {
      test(`${mode} mode: snooze brings the job back later without counting the attempt`, async () => {
        const q = fresh();
        const attempts: number[] = [];
        const schema = t.scratch.schema;
        const poll = q.task("poll", async (_: unknown, job) => {
          attempts.push(job.attempt);
          if (job.tx) {
            await job.tx`insert into ${
              job.tx(schema)
            }.effects values (${job.id}, ${`try ${attempts.length}`})`;
          }
          if (attempts.length < 3) return job.snooze(50);
        }, mode === "lease" ? { lease: "2s" } : {});
        const id = await poll({});
        const stop = new AbortController();
        const events: WorkEvent[] = [];
        await q.work({
          signal: stop.signal,
          onEvent: (e) => {
            events.push(e);
            if (e.type === "success") stop.abort();
          },
        });
        assert.deepEqual(attempts, [1, 1, 1]);
        assert.equal(events.filter((e) => e.type === "snooze").length, 2);
        if (mode === "transaction") {
          assert.deepEqual(await effects(id), ["try 1", "try 2", "try 3"]);
        }
      });
    }

    test("lease mode: progress is visible from another connection while the job runs", async () => {
      const q = fresh();
      const seen: unknown[] = [];
      const work = q.task("p", async (_: unknown, job) => {
        for (let i = 1; i <= 3; i++) {
          await job.progress({ percent: i * 10 });
          seen.push((await q.job(job.id))?.progress);
        }
      }, { lease: "2s" });
      await work({});
      await q.work({ burst: true });
      assert.deepEqual(seen, [{ percent: 10 }, { percent: 20 }, {
        percent: 30,
      }]);
    });

    test("transaction mode: progress is stored with the outcome", async () => {
      const q = fresh(kept);
      const p = q.task("p", async (_: unknown, job) => {
        await job.progress({ step: 1 });
        await job.progress({ step: 2 });
        return "ok";
      });
      const id = await p({});
      await q.work({ burst: true });
      const job = await q.job(id);
      assert.deepEqual(job?.progress, { step: 2 });
      assert.equal(job?.result, "ok");
    });
  });

  describe("lookup and waitFor", () => {
    test("job() reports a job run inside a transaction as running, without waiting for its lock", async () => {
      const q = fresh();
      let inside!: () => void;
      const isInside = new Promise<void>((resolve) => (inside = resolve));
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const hold = q.task("hold", async () => {
        inside();
        await held;
      });
      const id = await hold({});
      const work = q.work({ burst: true });
      await isInside;
      const start = performance.now();
      assert.equal((await q.job(id))?.state, "running");
      assert.ok(since(start) < 500, "no wait for the worker's lock");
      release();
      await work;
      assert.equal(await q.job(id), null, "completed and deleted");
      // A plain job that a get() inside an open transaction took.
      const plain = await q.put("held");
      let done!: () => void;
      const finish = new Promise<void>((resolve) => (done = resolve));
      const tx = q.transaction(async (qq) => {
        await qq.get({ block: false });
        await finish;
      });
      await sleep(50);
      assert.equal((await q.job(plain))?.state, "running");
      done();
      await tx;
      assert.equal(await q.job(plain), null);
    });

    test("job() returns every field", async () => {
      const q = fresh();
      const id = await q.put({ kind: "Cox" }, { expectedAt: "1h" });
      const job = await q.job(id) as JobInfo;
      assert.equal(job.id, id);
      assert.equal(job.queue, q.name);
      assert.equal(job.task, null);
      assert.equal(job.state, "ready");
      assert.deepEqual(job.data, { kind: "Cox" });
      assert.equal(job.rawData, '{"kind":"Cox"}');
      assert.equal(job.attempt, 0);
      assert.equal(job.maxAttempts, null);
      assert.equal(job.progress, undefined);
      assert.equal(job.result, undefined);
      assert.equal(job.error, null);
      assert.ok(job.enqueuedAt instanceof Date);
      assert.equal(job.scheduleAt, null);
      assert.ok(job.expectedAt instanceof Date);
      assert.equal(job.startedAt, null);
      assert.equal(job.finishedAt, null);
      assert.equal(await t.pq.queue("elsewhere").job(id), null, "per queue");
      await q.clear();
    });

    test("waitFor() is woken by NOTIFY when the job ends, in every final state", async () => {
      const pq = createPQ(t.sql, {
        schema: t.scratch.schema,
        keep: { completed: "1h" },
        pollInterval: "30s", // only NOTIFY can be fast
      });
      try {
        const q = fresh(pq);
        const ok = q.task("ok", (n: number) => n + 1);
        const bad = q.task("bad", () => {
          throw new Error("no");
        });
        const stop = new AbortController();
        const work = q.work({ signal: stop.signal, ...quiet });
        await sleep(100);
        for (
          const [make, state] of [
            [() => ok(1), "completed"],
            [() => bad(0), "failed"],
          ] as const
        ) {
          const id = await make();
          const start = performance.now();
          const job = await q.waitFor(id, { timeout: "20s" });
          assert.equal(job?.state, state);
          assert.ok(since(start) < 2_000, `${state} after ${since(start)} ms`);
        }
        const later = await q.put("x", { scheduleAt: "1h" });
        const waiting = q.waitFor(later, { timeout: "20s" });
        await sleep(100);
        const start = performance.now();
        await q.cancel(later);
        assert.equal((await waiting)?.state, "cancelled");
        assert.ok(since(start) < 2_000, `cancelled after ${since(start)} ms`);
        stop.abort();
        await work;
      } finally {
        await pq.close();
      }
    });

    test("waitFor() on a plain job hears the get() that takes it", async () => {
      const pq = createPQ(t.sql, {
        schema: t.scratch.schema,
        pollInterval: "30s", // only NOTIFY can be fast
      });
      try {
        const q = fresh(pq);
        const id = await q.put("x");
        const waiting = q.waitFor(id, { timeout: "20s" });
        await sleep(100);
        const start = performance.now();
        assert.equal((await q.get())?.id, id);
        assert.equal((await waiting)?.state, "completed");
        assert.ok(since(start) < 2_000, `after ${since(start)} ms`);
      } finally {
        await pq.close();
      }
    });

    test("waitFor() without kept results reports a deleted job as completed; times out with null; rejects on abort", async () => {
      const q = fresh();
      const task = q.task("t", () => {});
      const id = await task({});
      const waiting = q.waitFor(id, { timeout: "10s" });
      await sleep(50);
      await q.work({ burst: true });
      assert.equal((await waiting)?.state, "completed");
      const never = await q.put("never", { scheduleAt: "1h" });
      const start = performance.now();
      assert.equal(await q.waitFor(never, { timeout: 300 }), null);
      assert.ok(since(start) >= 250);
      await assert.rejects(
        q.waitFor(never, { signal: AbortSignal.timeout(100) }),
        { name: "TimeoutError" },
      );
      assert.equal(await q.waitFor("987654321"), null, "unknown");
      await q.clear();
    });
  });

  describe("retention", () => {
    test("prune() removes finished jobs past their time in batches of at most 1,000 rows", async () => {
      let deletes = 0;
      const counted = postgres(databaseUrl(), {
        max: 2,
        onnotice: () => {},
        debug: (_c, query) => {
          if (
            /delete from .*queue.* where id in \(select id from old/s.test(
              query,
            )
          ) {
            deletes++;
          }
        },
      });
      const pq = createPQ(counted, {
        schema: t.scratch.schema,
        keep: { completed: "1s", failed: "1h", cancelled: "1s" },
      });
      try {
        const q = fresh(pq);
        await t.sql`insert into ${t.sql(t.scratch.schema)}.queue
          (queue, data, state, finished_at)
          select ${q.name}, '{}', (array['completed', 'cancelled'])[1 + i % 2],
            now() - interval '1 minute'
          from generate_series(1, 2500) as i`;
        const young = await t.sql`insert into ${t.sql(t.scratch.schema)}.queue
          (queue, data, state, finished_at) values (${q.name}, '{}',
          'completed', now()), (${q.name}, '{}', 'failed',
          now() - interval '1 minute') returning id::text`;
        // The whole table is pruned: other tests' old jobs go too.
        const removed = await pq.prune();
        assert.ok(removed >= 2500, `${removed} removed`);
        assert.equal(
          deletes,
          Math.floor(removed / 1000) + 1,
          "statements of at most 1,000 rows each",
        );
        const [left] = await t.sql`select count(*)::int as n from ${
          t.sql(t.scratch.schema)
        }.queue where queue = ${q.name}`;
        assert.equal(left.n, 2, "only the young ones are left");
        for (const { id } of young) assert.ok(await q.job(id), "kept");
        await q.clear();
      } finally {
        await pq.close();
        await counted.end();
      }
    });

    test("keep rejects bad durations, naming them", () => {
      assert.throws(
        () => createPQ(t.sql, { keep: { completed: "1x" } }),
        /keep\.completed/,
      );
      assert.throws(
        () => createPQ(t.sql, { keep: { kept: "1d" } as never }),
        /unknown option 'kept'/,
      );
    });
  });
});
