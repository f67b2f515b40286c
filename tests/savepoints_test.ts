/**
 * Each transaction-mode job's savepoint: opened only once its handler uses
 * `job.tx`, so that a job that never writes there costs no statement, while
 * a job's failure still rolls back its own writes and nothing else of its
 * batch.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ, type Queue, type WorkEvent } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";

describe("job savepoints", () => {
  let t: TestPQ;
  /** A second client on the same table that records every statement. */
  let traced: { sql: postgres.Sql; pq: PQ; statements: string[] };
  let n = 0;
  const fresh = (): Queue => traced.pq.queue(`s${n++}`);
  const quiet = { onEvent: () => {} };

  before(async () => {
    t = await openTestPQ("savepoints");
    await t.sql`create table ${t.sql(t.scratch.schema)}.effects (
      job_id bigint, note text)`;
    const statements: string[] = [];
    const sql = postgres(databaseUrl(), {
      max: 4,
      onnotice: () => {},
      debug: (_connection, query) => void statements.push(query.trim()),
    });
    traced = {
      sql,
      pq: createPQ(sql, { schema: t.scratch.schema }),
      statements,
    };
  });
  after(async () => {
    await traced.pq.close();
    await traced.sql.end({ timeout: 1 });
    await t.close();
  });

  /** The notes written through job.tx, sorted. */
  const notes = async () =>
    (await t.sql`select note from ${
      t.sql(t.scratch.schema)
    }.effects order by note`).map((row) => row.note as string);
  const clearNotes = () =>
    t.sql`delete from ${t.sql(t.scratch.schema)}.effects`;
  /** Statements the traced client sent while `fn` ran. */
  const sentDuring = async (fn: () => Promise<unknown>) => {
    const from = traced.statements.length;
    await fn();
    return traced.statements.slice(from);
  };
  const count = (statements: string[], pattern: RegExp) =>
    statements.filter((s) => pattern.test(s)).length;

  test("jobs whose handlers never use job.tx send no savepoint of their own", async () => {
    const q = fresh();
    let ran = 0;
    const noop = q.task("noop", () => void ran++);
    await noop.many(Array.from({ length: 40 }, (_, i) => ({ args: i })));
    const sent = await sentDuring(() =>
      q.work({ burst: true, concurrency: 1, ...quiet })
    );
    assert.equal(ran, 40);
    const batches = count(sent, /^begin/i);
    assert.ok(batches >= 2, `40 jobs in batches of at most 32: ${batches}`);
    assert.equal(count(sent, /pq_job/), 0, "no job's own savepoint");
    // One savepoint per batch: the scope its jobs would query through.
    assert.equal(count(sent, /^savepoint/i), batches);
  });

  test("a job that uses job.tx opens its savepoint once and releases it", async () => {
    const q = fresh();
    await clearNotes();
    const write = q.task("write", async (note: string, job) => {
      await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        values (${job.id}, ${note})`;
      await job.tx`select 1`;
    });
    await write.many(["a", "b", "c"].map((args) => ({ args })));
    const sent = await sentDuring(() =>
      q.work({ burst: true, concurrency: 1, ...quiet })
    );
    assert.deepEqual(await notes(), ["a", "b", "c"]);
    assert.equal(count(sent, /^savepoint pq_job$/), 3);
    assert.equal(count(sent, /^release savepoint pq_job$/), 3);
    assert.equal(count(sent, /^rollback to savepoint/), 0);
  });

  test("in one batch, a failed job's writes are undone and the others' kept", async () => {
    const q = fresh();
    await clearNotes();
    const events: WorkEvent[] = [];
    const mixed = q.task("mixed", async (how: string, job) => {
      if (how !== "throw without writing") {
        await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
          values (${job.id}, ${how})`;
      }
      if (how.startsWith("throw")) throw new Error(how);
    }, { maxRetries: 0 });
    const order = ["ok 1", "throw after writing", "throw without writing"];
    await mixed.many([...order, "ok 2"].map((args) => ({ args })));
    const stats = await q.work({
      burst: true,
      concurrency: 1,
      onEvent: (e) => void events.push(e),
    });
    assert.deepEqual(stats, { done: 2, retried: 0, failed: 2 });
    assert.deepEqual(await notes(), ["ok 1", "ok 2"]);
    const failed = (await q.failed()).map((job) => job.error?.message).sort();
    assert.deepEqual(failed, ["throw after writing", "throw without writing"]);
  });

  test("a failed statement the handler caught fails the job with its error", async () => {
    const q = fresh();
    await clearNotes();
    const swallow = q.task("swallow", async (how: string, job) => {
      await job.tx`insert into ${job.tx(t.scratch.schema)}.effects
        values (${job.id}, ${how})`;
      if (how === "caught") {
        await job.tx`select 1 / 0`.catch(() => {});
      } else if (how === "not awaited") {
        job.tx`select 1 / 0`.execute();
      }
    }, { maxRetries: 0 });
    await swallow.many(
      ["caught", "fine", "not awaited", "also fine"].map((args) => ({ args })),
    );
    const stats = await q.work({ burst: true, concurrency: 1, ...quiet });
    assert.deepEqual(stats, { done: 2, retried: 0, failed: 2 });
    assert.deepEqual(await notes(), ["also fine", "fine"]);
    const failed = await q.failed();
    assert.equal(failed.length, 2);
    for (const job of failed) {
      assert.match(job.error?.message ?? "", /division by zero/);
    }
  });

  test("statements sent side by side, one failing, undo only their own job", async () => {
    const q = fresh();
    await clearNotes();
    const together = q.task("together", async (how: string, job) => {
      const table = job.tx(t.scratch.schema);
      await Promise.all([
        job.tx`insert into ${table}.effects values (${job.id}, ${how + " 1"})`,
        how === "fail" ? job.tx`select 1 / 0` : job.tx`select 1`,
        job.tx`insert into ${table}.effects values (${job.id}, ${how + " 2"})`,
      ]);
    }, { maxRetries: 0 });
    await together.many(["ok", "fail", "also ok"].map((args) => ({ args })));
    const stats = await q.work({ burst: true, concurrency: 1, ...quiet });
    assert.deepEqual(stats, { done: 2, retried: 0, failed: 1 });
    assert.deepEqual(await notes(), ["also ok 1", "also ok 2", "ok 1", "ok 2"]);
    assert.match(
      (await q.failed())[0].error?.message ?? "",
      /division by zero/,
    );
  });

  test("a handler that throws after a nested savepoint succeeded keeps nothing of it", async () => {
    const q = fresh();
    await clearNotes();
    const undone = q.task("undone", async (how: string, job) => {
      const table = job.tx(t.scratch.schema);
      await job.tx.savepoint(async (sp) => {
        await sp`insert into ${table}.effects values (${job.id}, ${how})`;
      });
      if (how === "throw") throw new Error("after the nested savepoint");
    }, { maxRetries: 0 });
    await undone.many(["throw", "keep"].map((args) => ({ args })));
    const stats = await q.work({ burst: true, concurrency: 1, ...quiet });
    assert.deepEqual(stats, { done: 1, retried: 0, failed: 1 });
    assert.deepEqual(await notes(), ["keep"]);
  });

  test("a nested savepoint that failed and was caught keeps the job's other writes", async () => {
    const q = fresh();
    await clearNotes();
    const nested = q.task("nested", async (_: unknown, job) => {
      const table = job.tx(t.scratch.schema);
      await job.tx`insert into ${table}.effects values (${job.id}, 'before')`;
      await job.tx.savepoint(async (sp) => {
        await sp`insert into ${table}.effects values (${job.id}, 'inside')`;
        throw new Error("undo the inside");
      }).catch(() => {});
      await job.tx`insert into ${table}.effects values (${job.id}, 'after')`;
    }, { maxRetries: 0 });
    await nested({});
    const stats = await q.work({ burst: true, ...quiet });
    assert.deepEqual(stats, { done: 1, retried: 0, failed: 0 });
    assert.deepEqual(await notes(), ["after", "before"]);
  });
});
