/**
 * put, get, iterate, size, scheduling and priorities: the behaviours of
 * Python pq's own test suite, against a real PostgreSQL.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import { createPQ, type Queue } from "../mod.ts";
import { databaseUrl, testSchema } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";

/**
 * Tests that mostly wait out the client's timers; the statements they run
 * (a put, a take, the promotion of due jobs) run in the matrix's other tests
 * too. `.ci/run`'s version matrix skips them (`PQ_SKIP_TIMERS_ONLY`), to stay
 * within CI's time; every other run has them.
 */
const timersOnly = { skip: process.env.PQ_SKIP_TIMERS_ONLY === "1" };

describe("queue", () => {
  let t: TestPQ;
  let n = 0;
  /** A fresh queue for each test. */
  const fresh = <T = unknown>(): Queue<T> => t.pq.queue<T>(`q${n++}`);

  before(async () => {
    t = await openTestPQ("queue");
  });
  after(async () => {
    await t.close();
  });

  test("put then get returns the job with its data and metadata", async () => {
    const q = fresh<{ kind: string }>();
    const before = Date.now();
    const id = await q.put({ kind: "Cox" });
    assert.match(id, /^\d+$/);
    const job = await q.get();
    assert.ok(job);
    assert.equal(job.id, id);
    assert.equal(job.queue, q.name);
    assert.deepEqual(job.data, { kind: "Cox" });
    assert.equal(job.size, JSON.stringify({ kind: "Cox" }).length);
    assert.ok(job.enqueuedAt instanceof Date);
    assert.ok(Math.abs(job.enqueuedAt.getTime() - before) < 5_000);
    assert.equal(job.scheduleAt, null);
    assert.equal(job.expectedAt, null);
    assert.equal(await q.get({ block: false }), null);
  });

  test("the pickle codec round-trips a Date and non-ASCII text", async () => {
    const q = t.pq.queue(`pickled${n++}/pickle`);
    const data = {
      when: new Date("2024-02-29T12:34:56.789Z"),
      text: "Æblegrød, 林檎, 🍎",
    };
    await q.put(data);
    const job = await q.get();
    assert.ok(job);
    assert.deepEqual(job.data, data);
    assert.ok((job.data as typeof data).when instanceof Date);
  });

  test("jobs come out by expectedAt, jobs without one last", async () => {
    const q = fresh<number>();
    await q.put(1, { expectedAt: "1s" });
    await q.put(2, { expectedAt: "2s" });
    await q.put(3, { expectedAt: "3s" });
    await q.put(6);
    await q.put(4, { expectedAt: 4_000 });
    await q.put(5, { expectedAt: new Date(Date.now() + 5_000) });
    const out = [];
    for (let i = 0; i < 6; i++) out.push((await q.get())?.data);
    assert.deepEqual(out, [1, 2, 3, 4, 5, 6]);
    assert.equal(await q.get({ block: false }), null);
  });

  test("ties go first in, first out", async () => {
    const q = fresh<number>();
    const expectedAt = new Date(Date.now() + 60_000);
    for (let i = 0; i < 5; i++) await q.put(i, { expectedAt });
    for (let i = 5; i < 10; i++) await q.put(i);
    const out = [];
    for (let i = 0; i < 10; i++) out.push((await q.get())?.data);
    assert.deepEqual(out, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test("a scheduled job that came due competes by expectedAt", async () => {
    const q = fresh<string>();
    await q.put("unscheduled, no priority");
    await q.put("due, expected soon", { scheduleAt: 300, expectedAt: "1s" });
    await sleep(500);
    assert.equal((await q.get())?.data, "due, expected soon");
    assert.equal((await q.get())?.data, "unscheduled, no priority");
  });

  test(
    "a job scheduled in 6 s is not returned by a get with a 5 s timeout",
    timersOnly,
    async () => {
      const q = fresh();
      await q.put("later", { scheduleAt: "6s" });
      const start = performance.now();
      assert.equal(await q.get({ timeout: "5s" }), null);
      assert.ok(since(start) >= 4_900, `returned after ${since(start)} ms`);
      await q.clear();
    },
  );

  test("scheduled jobs come out when they come due", async () => {
    const q = fresh<string>();
    const start = performance.now();
    await q.put("A");
    await q.put("B", { scheduleAt: "6s" });
    await q.put("C", { scheduleAt: "2s" });
    await q.put("D", { scheduleAt: "4s" });
    const seen: [string | undefined, number][] = [];
    for (let i = 0; i < 4; i++) {
      const job = await q.get({ timeout: "10s" });
      seen.push([job?.data, since(start)]);
    }
    assert.deepEqual(seen.map(([d]) => d), ["A", "C", "D", "B"]);
    const [[, a], [, c], [, d], [, b]] = seen;
    assert.ok(a < 500, `A after ${a} ms`);
    assert.ok(c >= 1_950 && c < 3_000, `C after ${c} ms`);
    assert.ok(d >= 3_950 && d < 5_000, `D after ${d} ms`);
    assert.ok(b >= 5_950 && b < 7_000, `B after ${b} ms`);
    const waited = performance.now();
    assert.equal(await q.get(), null);
    assert.ok(since(waited) >= 950, `null after ${since(waited)} ms`);
  });

  test("job.update() is visible in the table and the size follows", async () => {
    const q = fresh<{ foo: string }>();
    await q.put({ foo: "bar" });
    const job = await q.get();
    assert.ok(job);
    await job.update({ foo: "boo and more" });
    assert.deepEqual(job.data, { foo: "boo and more" });
    assert.equal(job.size, JSON.stringify({ foo: "boo and more" }).length);
    const [row] = await t.sql`select data::text as data from ${
      t.sql(t.scratch.schema)
    }.queue where id = ${job.id}`;
    assert.deepEqual(JSON.parse(row.data), { foo: "boo and more" });
    assert.match(String(job), new RegExp(`size=${job.size} `));
    // A rewritten job is a record, not a job to take again.
    assert.equal(await q.get({ block: false }), null);
    assert.equal(await q.size(), 0);
  });

  test("toString() shows id, queue, size and the three times", async () => {
    const q = fresh();
    const scheduleAt = new Date(Date.now() - 1_000);
    const expectedAt = new Date(Date.now() + 60_000);
    await q.put({ a: 1 }, { scheduleAt, expectedAt });
    const job = await q.get();
    assert.ok(job);
    assert.equal(
      String(job),
      `<pq.Job id=${job.id} queue="${q.name}" size=7 enqueuedAt=${job.enqueuedAt.toISOString()} scheduleAt=${scheduleAt.toISOString()} expectedAt=${expectedAt.toISOString()}>`,
    );
  });

  test("get on a non-empty queue returns within 100 ms", async () => {
    const q = fresh();
    await q.put("x");
    const start = performance.now();
    assert.ok(await q.get());
    assert.ok(since(start) < 100, `took ${since(start)} ms`);
  });

  test(
    "get on an empty queue returns null after its timeout",
    timersOnly,
    async () => {
      const q = fresh();
      let start = performance.now();
      assert.equal(await q.get({ timeout: "2s" }), null);
      let took = since(start);
      assert.ok(took >= 1_950 && took < 3_000, `2 s timeout took ${took} ms`);
      start = performance.now();
      assert.equal(await q.get(), null);
      took = since(start);
      assert.ok(took >= 950 && took < 2_000, `default timeout took ${took} ms`);
    },
  );

  test("a timeout given to one get does not change later gets", async () => {
    const q = fresh();
    assert.equal(await q.get({ timeout: 50 }), null);
    const start = performance.now();
    assert.equal(await q.get(), null);
    assert.ok(since(start) >= 950, `took ${since(start)} ms`);
  });

  test("a put from another connection wakes a blocking get within a second", async () => {
    const q = fresh<string>();
    const other = postgres(databaseUrl(), { max: 1 });
    try {
      const start = performance.now();
      const put = sleep(200).then(() =>
        other`insert into ${
          other(t.scratch.schema)
        }.queue (queue, data) values (${q.name}, '"hello"')`
      );
      const job = await q.get({ timeout: "5s" });
      await put;
      assert.equal(job?.data, "hello");
      assert.ok(since(start) < 1_000, `woke after ${since(start)} ms`);
    } finally {
      await other.end();
    }
  });

  test("a put after the timeout is not returned", async () => {
    const q = fresh();
    const put = sleep(700).then(() => q.put("late"));
    assert.equal(await q.get({ timeout: 300 }), null);
    await put;
    assert.equal((await q.get())?.data, "late");
  });

  test("a non-blocking get misses a job put 100 ms later, then finds it", async () => {
    const q = fresh();
    const put = sleep(100).then(() => q.put("soon"));
    assert.equal(await q.get({ block: false }), null);
    await put;
    assert.equal((await q.get({ block: false }))?.data, "soon");
  });

  test("iteration over a queue fed by a concurrent producer yields every item", async () => {
    const q = fresh<number>();
    const producer = (async () => {
      for (let i = 0; i < 50; i++) {
        await q.put(i);
        if (i % 10 === 0) await sleep(20);
      }
    })();
    const seen: number[] = [];
    for await (const job of q.iterate({ timeout: 500 })) {
      if (job === null) break;
      seen.push(job.data);
    }
    await producer;
    assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => i));
  });

  test("for await over a queue yields null after the default timeout", async () => {
    const q = fresh();
    await q.put("only");
    const seen = [];
    for await (const job of q) {
      seen.push(job?.data ?? null);
      if (job === null) break;
    }
    assert.deepEqual(seen, ["only", null]);
  });

  test("iterate() ends when its signal aborts", async () => {
    const q = fresh();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const start = performance.now();
    const seen = [];
    for await (
      const job of q.iterate({ timeout: "10s", signal: controller.signal })
    ) {
      seen.push(job);
    }
    assert.deepEqual(seen, []);
    assert.ok(since(start) < 1_000, `ended after ${since(start)} ms`);
  });

  test("size counts ready jobs only and follows a scheduled job becoming ready", async () => {
    const q = fresh();
    assert.equal(await q.size(), 0);
    await q.put("now");
    await q.put("soon", { scheduleAt: 500 });
    await q.put("later", { scheduleAt: "1h" });
    assert.equal(await q.size(), 1);
    await sleep(700);
    assert.equal(await q.size(), 2);
    assert.equal(await q.clear(), 3);
    assert.equal(await q.size(), 0);
  });

  test("size({ atMost }) stops counting there, over plain, task and due jobs; a bad bound names the option", async () => {
    const q = fresh();
    await q.putMany(Array.from({ length: 5 }, (_, i) => ({ data: i })));
    await q.put("due", { scheduleAt: 1 });
    await sleep(20);
    const tasked = q.task("t", () => {});
    await tasked.many([{ args: 1 }, { args: 2 }]);
    assert.equal(await q.size(), 8);
    assert.equal(await q.size({ atMost: 3 }), 3);
    assert.equal(await q.size({ atMost: 8 }), 8);
    assert.equal(await q.size({ atMost: 100 }), 8);
    assert.equal(await q.size({ task: "t" }), 2);
    assert.equal(await q.size({ task: "t", atMost: 1 }), 1);
    for (const atMost of [0, -1, 1.5, "3", Number.NaN]) {
      await assert.rejects(
        q.size({ atMost } as never),
        (error: Error) =>
          error instanceof TypeError && /'atMost' must be a whole number/
            .test(error.message),
      );
    }
    await q.clear();
  });

  test("8 producers x 100 jobs with 4 consumers: every job consumed exactly once", async () => {
    const q = fresh<string>();
    const producers = Array.from({ length: 8 }, async (_, p) => {
      for (let i = 0; i < 100; i++) await q.put(`${p}-${i}`);
    });
    let producing = true;
    const consumed: string[] = [];
    const consumers = Array.from({ length: 4 }, async () => {
      while (true) {
        const job = await q.get({ timeout: 200 });
        if (job) consumed.push(job.data);
        else if (!producing) return;
      }
    });
    await Promise.all(producers);
    producing = false;
    await Promise.all(consumers);
    assert.equal(consumed.length, 800);
    assert.equal(new Set(consumed).size, 800);
  });

  test("queue names with a space, quotes, Unicode and 64+ characters all work", async () => {
    const names = [
      "with space",
      `it's "quoted"`,
      "Æble 林檎 🍎",
      "x".repeat(64),
      "ü".repeat(300),
      "'; drop table queue; --",
    ];
    for (const name of names) {
      const q = t.pq.queue(name);
      await q.put({ name });
      assert.deepEqual((await q.get())?.data, { name });
      const late = sleep(100).then(() => q.put("woken"));
      const start = performance.now();
      assert.equal((await q.get({ timeout: "5s" }))?.data, "woken");
      assert.ok(since(start) < 1_000, `${name}: woke after ${since(start)} ms`);
      await late;
    }
  });

  test("a blocking get wakes when a scheduled job put meanwhile comes due", async () => {
    const q = fresh();
    const start = performance.now();
    const put = sleep(100).then(() => q.put("due", { scheduleAt: 500 }));
    assert.equal((await q.get({ timeout: "5s" }))?.data, "due");
    await put;
    const took = since(start);
    assert.ok(took >= 550 && took < 1_500, `took ${took} ms`);
  });

  test("an aborted signal rejects with its reason, before any query when already aborted", async () => {
    const q = fresh();
    await q.put("kept");
    const reason = new Error("stop");
    await assert.rejects(
      q.get({ signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
    assert.equal(await q.size(), 1, "the job is still there");
    await q.get();
    const controller = new AbortController();
    const start = performance.now();
    setTimeout(() => controller.abort(reason), 100);
    await assert.rejects(
      q.get({ timeout: "10s", signal: controller.signal }),
      (error) => error === reason,
    );
    assert.ok(since(start) < 1_000);
    await assert.rejects(
      q.get({ timeout: "10s", signal: AbortSignal.timeout(100) }),
      { name: "TimeoutError" },
    );
  });

  test("two PQs with different tables in one schema both keep working", async () => {
    const other = createPQ(t.sql, { schema: t.scratch.schema, table: "other" });
    try {
      await other.create();
      const a = t.pq.queue("shared-name");
      const b = other.queue("shared-name");
      for (const [q, label] of [[a, "a"], [b, "b"]] as const) {
        const late = sleep(100).then(() => q.put(label));
        const start = performance.now();
        assert.equal((await q.get({ timeout: "5s" }))?.data, label);
        assert.ok(
          since(start) < 1_000,
          `${label}: woke after ${since(start)} ms`,
        );
        await late;
      }
      assert.equal(await a.size(), 0);
      assert.equal(await b.size(), 0);
    } finally {
      await other.close();
    }
  });

  test("putMany writes all jobs in one go and returns their ids in order", async () => {
    const q = fresh<number>();
    const ids = await q.putMany(
      Array.from({ length: 1_000 }, (_, i) => ({ data: i })),
    );
    assert.equal(ids.length, 1_000);
    assert.deepEqual(
      ids.map(BigInt),
      [...ids.map(BigInt)].sort((a, b) => a < b ? -1 : 1),
    );
    const first = await q.get();
    assert.equal(first?.id, ids[0]);
    assert.equal(first?.data, 0);
    assert.equal(await q.size(), 999);
    assert.deepEqual(await q.putMany([]), []);
  });

  test("putMany takes per-item times and shared ones", async () => {
    const q = fresh<string>();
    const at = new Date(Date.now() + 3_600_000);
    await q.putMany([
      { data: "shared" },
      { data: "own", expectedAt: at },
      { data: "ready", scheduleAt: 0 },
    ], { expectedAt: "2h", scheduleAt: "1h" });
    assert.equal(await q.size(), 1);
    const ready = await q.get();
    assert.equal(ready?.data, "ready");
    assert.ok(
      ready.expectedAt && ready.expectedAt.getTime() > Date.now() + 7_000_000,
    );
    const rows = await t.sql`select data::text, expected_at from ${
      t.sql(t.scratch.schema)
    }.queue where queue = ${q.name} order by id`;
    assert.equal(rows[1].expected_at.getTime(), at.getTime());
  });

  test("a PQ without a schema uses the search path", async () => {
    const sql = postgres(databaseUrl(), {
      max: 2,
      onnotice: () => {},
      connection: { search_path: t.scratch.schema },
    });
    const pq = createPQ(sql, { table: "searched" });
    try {
      await pq.create();
      const q = pq.queue("apples");
      await q.put({ kind: "Cox" });
      assert.deepEqual((await q.get())?.data, { kind: "Cox" });
      const late = sleep(100).then(() => q.put("woken"));
      assert.equal((await q.get({ timeout: "5s" }))?.data, "woken");
      await late;
      const [row] = await t
        .sql`select to_regclass(${`"${t.scratch.schema}".searched`}) is not null as found`;
      assert.equal(row.found, true);
    } finally {
      await pq.close();
      await sql.end();
    }
  });
});

describe("create()", () => {
  test("is idempotent and safe when several processes call it at once", async () => {
    const sql = postgres(databaseUrl(), { max: 8, onnotice: () => {} });
    const scratch = await testSchema(sql, "create");
    try {
      const pqs = Array.from(
        { length: 6 },
        () => createPQ(sql, { schema: scratch.schema }),
      );
      await Promise.all(pqs.map((pq) => pq.create()));
      await pqs[0].create();
      const [row] = await sql`select count(*)::int as n from pg_indexes
        where schemaname = ${scratch.schema} and tablename = 'queue'`;
      assert.equal(row.n, 8, "primary key and seven partial indexes, once");
      await pqs[1].queue("a").put(1);
      assert.equal((await pqs[2].queue("a").get())?.data, 1);
      await Promise.all(pqs.map((pq) => pq.close()));
    } finally {
      await scratch.drop();
      await sql.end();
    }
  });
});
