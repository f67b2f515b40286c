/**
 * Unique keys: one waiting job per key, keep or replace (debounce),
 * throttle windows, putMany repeats, running jobs that do not hold their
 * key nor make puts wait, and exactness under concurrency across processes.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Queue } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";
import { spawnTs } from "./_spawn.ts";

describe("unique keys", () => {
  let t: TestPQ;
  let n = 0;
  const fresh = (): Queue => t.pq.queue(`u${n++}`);
  const jobs = async (queue: string) =>
    await t.sql`select id::text, data::text, state, key,
        schedule_at, expected_at
      from ${t.sql(t.scratch.schema)}.queue where queue = ${queue}
      order by id`;

  before(async () => {
    t = await openTestPQ("unique");
  });
  after(async () => {
    await t.close();
  });

  test("a second put of a waiting key returns the waiting job's id and writes nothing", async () => {
    const q = fresh();
    const a = await q.put({ v: 1 }, { key: "user:42" });
    const b = await q.put({ v: 2 }, { key: "user:42" });
    assert.equal(b, a);
    const rows = await jobs(q.name);
    assert.deepEqual(rows.map((r) => [r.data, r.key]), [[
      '{"v":1}',
      "user:42",
    ]]);
    assert.equal((await q.job(a))?.key, "user:42");
    // Another key, another queue: other jobs.
    assert.notEqual(await q.put({}, { key: "user:43" }), a);
    assert.notEqual(await fresh().put({}, { key: "user:42" }), a);
    // Once taken, the key is free again.
    assert.equal((await q.get({ block: false }))?.id, a);
    assert.notEqual(await q.put({ v: 3 }, { key: "user:42" }), a);
  });

  test("onDuplicate: replace swaps the waiting job's data and times and keeps its id (debounce)", async () => {
    const q = fresh();
    const a = await q.put({ v: 1 }, {
      key: "digest",
      onDuplicate: "replace",
      scheduleAt: "5m",
    });
    const b = await q.put({ v: 2 }, {
      key: "digest",
      onDuplicate: "replace",
      scheduleAt: "10m",
    });
    assert.equal(b, a);
    const [row] = await jobs(q.name);
    assert.equal(row.data, '{"v":2}');
    assert.equal(row.state, "scheduled");
    const inMs = row.schedule_at.getTime() - Date.now();
    assert.ok(inMs > 9 * 60_000 && inMs <= 10 * 60_000, `${inMs}`);
    // Replaced with no delay: ready at once, and a waiting getter is woken.
    const got = q.get({ timeout: "5s" });
    await sleep(100);
    const start = performance.now();
    await q.put({ v: 3 }, { key: "digest", onDuplicate: "replace" });
    const job = await got;
    assert.equal(job?.id, a);
    assert.deepEqual(job?.data, { v: 3 });
    assert.ok(since(start) < 1_000);
  });

  test("a running job does not hold its key, and a put never waits for its transaction", async () => {
    const q = fresh();
    let started!: () => void;
    const running = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const sync = q.task("sync", async () => {
      started();
      await held; // the worker's transaction stays open
    });
    const first = await sync({}, { key: "account:1" });
    const work = q.work({ burst: true });
    await running;
    const start = performance.now();
    const second = await sync({}, { key: "account:1" });
    assert.ok(since(start) < 500, `the put waited ${since(start)} ms`);
    assert.notEqual(second, first, "a new job while the first runs");
    // And the second one is now the waiting job of the key.
    assert.equal(await sync({}, { key: "account:1" }), second);
    release();
    await work;
  });

  test("throttle: one job per key per period, whether or not it ran", async () => {
    const q = fresh();
    const ping = q.task("ping", () => {});
    // Start just after a period boundary, so both puts share one period.
    await sleep(1_000 - (Date.now() % 1_000) + 20);
    const a = await ping({}, { key: "ping", throttle: "1s" });
    await q.work({ burst: true }); // it ran and was deleted
    const b = await ping({}, { key: "ping", throttle: "1s" });
    assert.equal(b, a, "same period: the first job's id");
    await sleep(1_000 - (Date.now() % 1_000) + 20);
    const c = await ping({}, { key: "ping", throttle: "1s" });
    assert.notEqual(c, a, "a new period: a new job");
  });

  test("putMany and task.many with repeated keys make one job per key, the same id for each repeat", async () => {
    const q = fresh();
    const ids = await q.putMany([
      { data: 1, key: "a" },
      { data: 2, key: "b" },
      { data: 3 },
      { data: 4, key: "a" },
      { data: 5 },
    ]);
    assert.equal(ids.length, 5);
    assert.equal(ids[3], ids[0]);
    assert.equal(new Set(ids).size, 4);
    assert.deepEqual((await jobs(q.name)).map((r) => r.data), [
      "1",
      "2",
      "3",
      "5",
    ]);
    const task = q.task("t", () => {});
    const more = await task.many(
      [{ args: 1, key: "x" }, { args: 2, key: "x" }],
      {
        onDuplicate: "replace",
      },
    );
    assert.equal(more[0], more[1]);
    assert.equal((await q.job(more[0]))?.data, 2);
  });

  test("a keyed put in a transaction that rolls back holds no key", async () => {
    const q = fresh();
    await t.sql.begin(async (tx) => {
      await q.with(tx).put(1, { key: "k" });
      throw new Error("roll back");
    }).catch(() => {});
    const id = await q.put(2, { key: "k" });
    assert.deepEqual((await jobs(q.name)).map((r) => [r.id, r.data]), [[
      id,
      "2",
    ]]);
  });

  test("bad keys and key options are errors that name them, and nothing is written", async () => {
    const q = fresh();
    await assert.rejects(
      q.put(1, { key: "" }),
      /Cannot put job: 'key' must be a non-empty string/,
    );
    await assert.rejects(q.put(1, { key: 7 as never }), TypeError);
    await assert.rejects(q.put(1, { key: "a\u0000" }), /NUL/);
    await assert.rejects(q.put(1, { onDuplicate: "replace" }), /needs a 'key'/);
    await assert.rejects(
      q.put(1, { key: "a", onDuplicate: "merge" as never }),
      /'onDuplicate' must be "keep" or "replace"/,
    );
    await assert.rejects(q.put(1, { key: "a", throttle: 0 }), RangeError);
    await assert.rejects(
      q.putMany([{ data: 1 }], { key: "a" } as never),
      /unknown option 'key'/,
    );
    assert.equal((await jobs(q.name)).length, 0);
  });

  test("100 concurrent puts of one key from four processes make exactly one job", async () => {
    const q = fresh();
    const children = Array.from(
      { length: 4 },
      () =>
        spawnTs("tests/fixtures/keyed_puts.ts", [
          t.scratch.schema,
          q.name,
          "once",
          "25",
        ], { DATABASE_URL: databaseUrl() }),
    );
    const lines = await Promise.all(
      children.map((c) => c.line("IDS ", 60_000)),
    );
    await Promise.all(children.map((c) => c.exited));
    const ids = lines.flatMap((line) => line.slice(4).split(","));
    assert.equal(ids.length, 100);
    assert.equal(new Set(ids).size, 1, "every put got the same id");
    const rows = await jobs(q.name);
    assert.deepEqual(rows.map((r) => r.id), [ids[0]]);
  });
});
