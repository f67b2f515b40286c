/**
 * `pq.stats()`: counts by queue, task and state with their kind (exact, at
 * least, estimate), the lag, and the per-minute counts workers write.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPQ, type PQ, type QueueStats } from "../mod.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";

describe("stats", () => {
  let t: TestPQ;
  /** A PQ on the same table that keeps completed jobs. */
  let kept: PQ;
  const quiet = { onEvent: () => {} };
  const queueStats = async (name: string, pq: PQ = t.pq, limit?: number) =>
    (await pq.stats({ limit })).queues.find((q) => q.name === name) as
      | QueueStats
      | undefined;
  const table = () => `"${t.scratch.schema}"`;

  before(async () => {
    t = await openTestPQ("stats");
    kept = createPQ(t.sql, {
      schema: t.scratch.schema,
      keep: { completed: "1h" },
    });
  });
  after(async () => {
    await kept.close();
    await t.close();
  });

  test("stats() counts jobs by queue, task and state, exactly under the limit", async () => {
    const queue = t.pq.queue("counted");
    const eat = queue.task("eat", () => {});
    const peel = queue.task("peel", () => {});
    await eat(1);
    await eat(2);
    await peel(3, { scheduleAt: "1h" });
    await queue.put("plain");
    const stats = (await queueStats("counted"))!;
    assert.deepEqual(stats.counts.ready, { count: 3, kind: "exact" });
    assert.deepEqual(stats.counts.scheduled, { count: 1, kind: "exact" });
    assert.deepEqual(stats.counts.failed, { count: 0, kind: "exact" });
    assert.deepEqual(stats.tasks.map((task) => task.name), ["eat", "peel"]);
    assert.deepEqual(stats.tasks[0].counts.ready, { count: 2, kind: "exact" });
    assert.deepEqual(stats.tasks[1].counts.scheduled, {
      count: 1,
      kind: "exact",
    });
    assert.equal(stats.tasks[1].lagMs, null); // nothing of it is ready
    assert.equal(stats.perMinute.length, 60);
    await queue.clear();
  });

  test("stats() answers 'at least' when a state has more jobs than the limit", async () => {
    const queue = t.pq.queue("bounded");
    await queue.putMany([1, 2, 3, 4, 5].map((data) => ({ data })));
    const stats = (await queueStats("bounded", t.pq, 3))!;
    assert.deepEqual(stats.counts.ready, { count: 3, kind: "atLeast" });
    assert.deepEqual(stats.counts.scheduled, { count: 0, kind: "exact" });
    await queue.clear();
  });

  test("the lag is the age of the oldest ready job", async () => {
    const queue = t.pq.queue("lagging");
    const id = await queue.put("old");
    await queue.put("new");
    await t.sql.unsafe(
      `update ${table()}.queue set enqueued_at = now() - interval '90 seconds'
      where id = $1`,
      [id],
    );
    const stats = (await queueStats("lagging"))!;
    assert.ok(
      stats.lagMs! >= 89_000 && stats.lagMs! < 120_000,
      `lag ${stats.lagMs}`,
    );
    await queue.clear();
  });

  test("workers count completed, failed and retried jobs per minute, in one row per task and minute", async () => {
    const queue = t.pq.queue("counting");
    const ok = queue.task("ok", () => {});
    const bad = queue.task("bad", () => {
      throw new Error("no");
    }, { maxRetries: 1, retryIn: 0 });
    for (let i = 0; i < 5; i++) await ok(i);
    await bad(0);
    await queue.work({ burst: true, ...quiet });
    const stats = (await queueStats("counting"))!;
    const now = stats.perMinute.at(-1)!;
    // A burst may straddle a minute: sum the last two.
    const recent = stats.perMinute.slice(-2).reduce(
      (sum, m) => ({
        completed: sum.completed + m.completed,
        failed: sum.failed + m.failed,
        retried: sum.retried + m.retried,
      }),
      { completed: 0, failed: 0, retried: 0 },
    );
    assert.deepEqual(recent, { completed: 5, failed: 1, retried: 1 });
    assert.ok(now.minute.getTime() % 60_000 === 0);
    const okStats = stats.tasks.find((task) => task.name === "ok")!;
    assert.equal(
      okStats.perMinute.reduce((sum, m) => sum + m.completed, 0),
      5,
    );
    assert.deepEqual(stats.counts.failed, { count: 1, kind: "exact" });
    const [{ rows }] = await t.sql.unsafe(
      `select count(*)::int as rows from ${table()}.pq_counts
      where queue = 'counting'`,
    );
    assert.ok(rows <= 4, `${rows} rows for 2 tasks`);
    await queue.clear();
  });

  test("a flush deletes counts older than two hours", async () => {
    await t.sql.unsafe(
      `insert into ${table()}.pq_counts (relid, queue, task, minute, completed)
      values ($1::regclass::oid, 'old', 'x', now() - interval '3 hours', 1)`,
      [`${table()}.queue`],
    );
    const queue = t.pq.queue("flushing");
    const ok = queue.task("ok", () => {});
    await ok(1);
    await queue.work({ burst: true, ...quiet });
    const [{ n }] = await t.sql.unsafe(
      `select count(*)::int as n from ${table()}.pq_counts where queue = 'old'`,
    );
    assert.equal(n, 0);
  });

  test("completed jobs are counted, and estimated past the limit", async () => {
    const queue = kept.queue("keeping");
    const ok = queue.task("ok", () => {});
    for (let i = 0; i < 4; i++) await ok(i);
    await queue.work({ burst: true, ...quiet });
    let stats = (await queueStats("keeping", kept))!;
    assert.deepEqual(stats.counts.completed, { count: 4, kind: "exact" });
    assert.deepEqual(stats.tasks[0].counts.completed, {
      count: 4,
      kind: "exact",
    });
    stats = (await queueStats("keeping", kept, 2))!;
    assert.equal(stats.counts.completed.kind, "estimate");
    assert.ok(stats.counts.completed.count >= 1);
    assert.equal(stats.tasks[0].counts.completed.kind, "atLeast");
  });

  test("stats() rejects a bad limit, naming it", async () => {
    await assert.rejects(
      t.pq.stats({ limit: 0 }),
      (error: Error) =>
        error instanceof RangeError &&
        /'limit'.*received 0/.test(error.message),
    );
    await assert.rejects(
      t.pq.stats({ limit: 1.5 }),
      RangeError,
    );
  });
});
