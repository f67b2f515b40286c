/**
 * transaction() and with(tx): put and get as part of the caller's
 * transaction.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type Queue } from "../mod.ts";
import { databaseUrl, testSchema } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";

describe("transactions", () => {
  let t: TestPQ;
  let n = 0;
  const fresh = <T = unknown>(): Queue<T> => t.pq.queue<T>(`t${n++}`);

  before(async () => {
    t = await openTestPQ("transaction");
  });
  after(async () => {
    await t.close();
  });

  test("a put inside transaction() is seen by a get after it", async () => {
    const q = fresh();
    await q.transaction(async (tq) => {
      await tq.put("inside");
      assert.equal(await q.get({ block: false }), null, "not visible yet");
    });
    assert.equal((await q.get({ block: false }))?.data, "inside");
  });

  test("a get and an update inside transaction() are seen by a later transaction", async () => {
    const q = fresh<{ foo: string }>();
    await q.put({ foo: "bar" });
    const job = await q.transaction(async (tq) => {
      const job = await tq.get();
      assert.ok(job);
      await job.update({ foo: "boo" });
      return job;
    });
    const rows = await t.sql.begin((tx) =>
      tx`select data::text as data from ${
        tx(t.scratch.schema)
      }.queue where id = ${job.id}`
    );
    assert.deepEqual(JSON.parse(rows[0].data), { foo: "boo" });
    assert.equal(await q.get({ block: false }), null, "the job was taken");
  });

  test("an error inside transaction() rolls back both a put and a get", async () => {
    const q = fresh<string>();
    await q.put("original");
    const boom = new Error("boom");
    await assert.rejects(
      q.transaction(async (tq) => {
        assert.equal((await tq.get())?.data, "original");
        await tq.put("never");
        throw boom;
      }),
      (error) => error === boom,
    );
    assert.equal(await q.size(), 1);
    assert.equal((await q.get())?.data, "original");
    assert.equal(await q.get({ block: false }), null);
  });

  test("with(tx) puts and gets inside the caller's sql.begin()", async () => {
    const q = fresh<string>();
    await t.sql.begin(async (tx) => {
      await q.with(tx).put("a");
      await q.with(tx).put("b");
    });
    await assert.rejects(
      t.sql.begin(async (tx) => {
        assert.equal((await q.with(tx).get())?.data, "a");
        throw new Error("undo");
      }),
    );
    assert.equal(await q.size(), 2);
  });

  test("a job taken in an open transaction is skipped by other getters", async () => {
    const q = fresh<string>();
    await q.putMany([{ data: "first" }, { data: "second" }]);
    await q.transaction(async (tq) => {
      assert.equal((await tq.get())?.data, "first");
      assert.equal((await q.get({ block: false }))?.data, "second");
    });
    assert.equal(await q.size(), 0);
  });

  test("size() counts a job an open transaction has taken, until it commits", async () => {
    const q = fresh<string>();
    await q.putMany([{ data: "first" }, { data: "second" }]);
    await q.transaction(async (tq) => {
      assert.equal((await tq.get())?.data, "first");
      assert.equal(await q.size(), 2);
    });
    assert.equal(await q.size(), 1);
  });

  test("clear() waits for a transaction that holds a job of the queue", async () => {
    const q = fresh<string>();
    await q.putMany([{ data: "taken" }, { data: "left" }]);
    let cleared: Promise<number> | undefined;
    let settled = false;
    await q.transaction(async (tq) => {
      assert.equal((await tq.get())?.data, "taken");
      cleared = q.clear().finally(() => settled = true);
      await sleep(300);
      assert.equal(settled, false);
    });
    assert.equal(await cleared, 1); // "left"; "taken" left with the commit
  });

  test("a blocking get inside a transaction is woken by a put from outside", async () => {
    const q = fresh<string>();
    const start = performance.now();
    const put = sleep(200).then(() => q.put("hello"));
    const data = await q.transaction(async (tq) =>
      (await tq.get({ timeout: "5s" }))?.data
    );
    await put;
    assert.equal(data, "hello");
    assert.ok(since(start) < 1_000, `woke after ${since(start)} ms`);
  });

  test("a nested transaction() on a bound queue uses a savepoint", async () => {
    const q = fresh<string>();
    await q.transaction(async (outer) => {
      await outer.put("kept");
      await assert.rejects(outer.transaction(async (inner) => {
        await inner.put("dropped");
        throw new Error("inner");
      }));
    });
    assert.equal((await q.get({ block: false }))?.data, "kept");
    assert.equal(await q.get({ block: false }), null);
  });
});

describe("transactions on a one-connection pool", () => {
  test("no connection stays checked out after a transaction that threw", async () => {
    const sql = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const scratch = await testSchema(sql, "txpool");
    const pq = createPQ(sql, { schema: scratch.schema });
    try {
      await pq.create();
      const q = pq.queue("apples");
      await q.put("x");
      for (let i = 0; i < 3; i++) {
        await assert.rejects(q.transaction(async (tq) => {
          await tq.get();
          throw new Error("fail");
        }));
      }
      // With the only connection leaked, this would never finish.
      const start = performance.now();
      const result = await Promise.race([
        sql`select 1 as one`.then(() => "free"),
        sleep(2_000).then(() => "stuck"),
      ]);
      assert.equal(result, "free");
      assert.ok(since(start) < 1_000);
      assert.equal(await q.size(), 1);
    } finally {
      await pq.close();
      await scratch.drop();
      await sql.end();
    }
  });

  test("a blocking get inside a transaction holding the only connection is still woken", async () => {
    const sql = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const other = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const scratch = await testSchema(sql, "txone");
    const pq = createPQ(sql, { schema: scratch.schema });
    try {
      await pq.create();
      const q = pq.queue("apples");
      const start = performance.now();
      const put = sleep(200).then(() =>
        other`insert into ${
          other(scratch.schema)
        }.queue (queue, data) values ('apples', '"late"')`
      );
      const data = await q.transaction(async (tq) =>
        (await tq.get({ timeout: "5s" }))?.data
      );
      await put;
      assert.equal(data, "late");
      assert.ok(since(start) < 1_500, `woke after ${since(start)} ms`);
    } finally {
      await pq.close();
      await scratch.drop();
      await sql.end();
      await other.end();
    }
  });
});
