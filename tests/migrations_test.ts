/**
 * Migrations: stable names, upgrades of a live 0.1.0 table without losing a
 * job, processes of both versions side by side, and newer schemas left alone.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ } from "../mod.ts";
import { databaseUrl, type TestSchema, testSchema } from "./_db.ts";
import { sleep } from "./_pq.ts";
import * as v010 from "./fixtures/pq_0_1_0.ts";
import { SHARED_VERSION, TABLE_VERSION } from "../src/schema.ts";

describe("migrations", () => {
  let sql: postgres.Sql;
  let scratch: TestSchema;
  let n = 0;
  /** A fresh table name in the file's schema. */
  const fresh = () => `jobs${n++}`;
  const qualified = (table: string) =>
    sql`${sql(scratch.schema)}.${sql(table)}`;

  before(async () => {
    sql = postgres(databaseUrl(), { max: 10, onnotice: () => {} });
    scratch = await testSchema(sql, "migrations");
  });
  after(async () => {
    await scratch.drop();
    await sql.end();
  });

  /** The table's index and check names, and its comment. */
  async function objects(table: string) {
    const indexes = await sql`select indexname from pg_indexes
      where schemaname = ${scratch.schema} and tablename = ${table}
      order by indexname`;
    const checks = await sql`select conname from pg_constraint
      where conrelid = ${`"${scratch.schema}"."${table}"`}::regclass
        and contype = 'c'`;
    const [comment] = await sql`select obj_description(
      ${`"${scratch.schema}"."${table}"`}::regclass, 'pg_class') as c`;
    return {
      indexes: indexes.map((r) => r.indexname),
      checks: checks.map((r) => r.conname),
      comment: comment.c,
    };
  }

  /** The markers of this version's shared functions. */
  const current = [
    `pq_notify:${SHARED_VERSION}`,
    `pq_wait:${SHARED_VERSION}`,
  ];

  /** The marker in the body of each shared function. */
  async function sharedMarkers(): Promise<string[]> {
    const rows = await sql`select p.proname, substring(p.prosrc
        from '-- pq shared version (\\d+)') as v
      from pg_proc as p join pg_namespace as s on s.oid = p.pronamespace
      where s.nspname = ${scratch.schema}
        and p.proname in ('pq_wait', 'pq_notify')
      order by p.proname`;
    return rows.map((r) => `${r.proname}:${r.v}`);
  }

  test("a fresh create() names every object and records both versions", async () => {
    const table = fresh();
    const pq = createPQ(sql, { schema: scratch.schema, table });
    await pq.create();
    await pq.close();
    assert.deepEqual(await objects(table), {
      indexes: [
        `${table}_finished_at_idx`,
        `${table}_finished_idx`,
        `${table}_group_idx`,
        `${table}_pkey`,
        `${table}_ready_plain_idx`,
        `${table}_ready_task_idx`,
        `${table}_running_idx`,
        `${table}_scheduled_idx`,
      ],
      checks: [`${table}_state_check`],
      comment: `pq schema ${TABLE_VERSION}`,
    });
    assert.deepEqual(await sharedMarkers(), current);
  });

  test("the state check takes the seven states and refuses others, fresh or upgraded from 0.1.0", async () => {
    const made = fresh(), upgraded = fresh();
    for (const statement of v010.ddl(scratch.schema, upgraded)) {
      await sql.unsafe(statement);
    }
    for (const table of [made, upgraded]) {
      const pq = createPQ(sql, { schema: scratch.schema, table });
      await pq.create();
      await pq.close();
    }
    const definition = async (table: string) =>
      (await sql`select pg_get_constraintdef(oid) as d from pg_constraint
        where conrelid = ${`"${scratch.schema}"."${table}"`}::regclass
          and contype = 'c'`)[0].d;
    // One constant array (table step 7), not an array of seven constants.
    assert.match(
      await definition(made),
      /state = ANY \('\{ready,scheduled,running,completed,failed,cancelled,done\}'::text\[\]\)/,
    );
    assert.equal(await definition(upgraded), await definition(made));
    for (const table of [made, upgraded]) {
      for (
        const state of [
          "ready",
          "scheduled",
          "running",
          "completed",
          "failed",
          "cancelled",
          "done",
        ]
      ) {
        await sql`insert into ${qualified(table)} (queue, data, state)
          values ('states', '1', ${state})`;
      }
      await assert.rejects(
        sql`insert into ${qualified(table)} (queue, data, state)
          values ('states', '1', 'taken')`,
        { code: "23514" },
      );
    }
  });

  test("long table names get distinct, stable object names under 63 bytes", async () => {
    const long = "q".repeat(60);
    const a = `${long}_a`, b = `${long}_b`;
    for (const table of [a, b]) {
      const pq = createPQ(sql, { schema: scratch.schema, table });
      await pq.create();
      await pq.close();
    }
    const names = [
      ...(await objects(a)).indexes,
      ...(await objects(b)).indexes,
    ];
    assert.equal(new Set(names).size, 16);
    for (const name of names) {
      assert.ok(new TextEncoder().encode(name).length <= 63, name);
    }
  });

  test("create() upgrades a 0.1.0 table in place with every job, while a worker of this version runs", async () => {
    const table = fresh();
    for (const statement of v010.ddl(scratch.schema, table)) {
      await sql.unsafe(statement);
    }
    const old = v010.statements(scratch.schema, table);
    const put = (
      queue: string,
      task: string | null,
      data: unknown,
      scheduleInMs: number | null = null,
      expectedInMs: number | null = null,
    ) =>
      sql.unsafe(old.insert, [
        queue,
        task,
        JSON.stringify(data),
        null,
        scheduleInMs,
        null,
        expectedInMs,
      ]);
    await put("plain", null, "second", null, 60_000);
    await put("plain", null, "first", null, 30_000);
    await put("plain", null, "last");
    await put("later", null, "tomorrow", 86_400_000);
    await put("later", null, "due", 1);
    await put("failed", "eat", { n: -1 });
    const [failing] = await sql.unsafe(old.take(true), ["failed"]);
    await sql.unsafe(old.fail, [
      failing.id,
      "failed",
      "eat",
      failing.data,
      1,
      JSON.stringify({ message: "boom" }),
    ]);
    const tasks = 300;
    for (let i = 0; i < tasks; i++) await put("work", "eat", { n: i });
    const snapshot = async () =>
      await sql`select id::text, queue, state, task, data::text, attempts,
          enqueued_at, schedule_at, expected_at, finished_at, error::text
        from ${qualified(table)} where queue <> 'work' order by id`;
    const before = await snapshot();

    // A worker of this version starts on the old table, before create().
    await sql`create table ${sql(scratch.schema)}.${
      sql(`${table}_effects`)
    } (job_id bigint primary key)`;
    const pq = createPQ(sql, { schema: scratch.schema, table });
    const eat = pq.queue("work").task("eat", async (_: unknown, job) => {
      await job.tx`insert into ${job.tx(scratch.schema)}.${
        job.tx(`${table}_effects`)
      } values (${job.id})`;
      await sleep(1);
    });
    const stop = new AbortController();
    let done = 0;
    const work = pq.queue("work").work({
      concurrency: 2,
      signal: stop.signal,
      onEvent: (e) => {
        if (e.type === "success" && ++done === tasks + 1) stop.abort();
      },
    });
    await sleep(50);
    await pq.create(); // the upgrade, under the running worker
    await eat({ n: tasks }); // a job put by this version after the upgrade
    const stats = await work;
    await pq.close();

    assert.deepEqual(stats, { done: tasks + 1, retried: 0, failed: 0 });
    const [effects] = await sql`select count(*)::int as all,
      count(distinct job_id)::int as distinct from ${sql(scratch.schema)}.${
      sql(`${table}_effects`)
    }`;
    assert.deepEqual({ ...effects }, { all: tasks + 1, distinct: tasks + 1 });
    assert.deepEqual(await snapshot(), before, "every other job is intact");
    const after = createPQ(sql, { schema: scratch.schema, table });
    try {
      const plain = after.queue<string>("plain");
      const order = [];
      for (let job; (job = await plain.get({ block: false }));) {
        order.push(job.data);
      }
      assert.deepEqual(order, ["first", "second", "last"]);
      assert.equal(
        (await after.queue("later").get({ block: false }))?.data,
        "due",
      );
      const [failed] = await after.queue("failed").failed();
      assert.deepEqual(failed.data, { n: -1 });
      assert.equal(failed.error?.message, "boom");
    } finally {
      await after.close();
    }
    assert.equal((await objects(table)).comment, `pq schema ${TABLE_VERSION}`);
  });

  test("a 0.1.0 process keeps working on an upgraded table beside this version", async () => {
    const table = fresh();
    const pq: PQ = createPQ(sql, { schema: scratch.schema, table });
    await pq.create();
    const old = v010.statements(scratch.schema, table);
    try {
      // Old put, new get.
      const [{ id }] = await sql.unsafe(old.insert, [
        "mixed",
        null,
        '"from 0.1.0"',
        null,
        null,
        null,
        null,
      ]);
      const job = await pq.queue("mixed").get({ block: false });
      assert.equal(job?.id, id);
      // New put, old take.
      const newId = await pq.queue("mixed").put("from now");
      const [taken] = await sql.unsafe(old.take(false), ["mixed"]);
      assert.equal(taken.id, newId);
      // Old promotion of a due job, new take of it.
      await sql.unsafe(old.insert, [
        "mixed",
        null,
        '"due"',
        null,
        1,
        null,
        null,
      ]);
      await sleep(20);
      await sql.unsafe(old.promote, ["mixed", 10]);
      assert.equal(
        (await pq.queue("mixed").get({ block: false }))?.data,
        "due",
      );
      // Old worker's failure, new listing and retry.
      const eat = pq.queue("tasks").task("eat", () => {});
      await eat({ n: 1 });
      const [row] = await sql.unsafe(old.take(true), ["tasks"]);
      await sql.unsafe(old.fail, [
        row.id,
        "tasks",
        "eat",
        row.data,
        1,
        '{"message":"old worker"}',
      ]);
      const [failed] = await pq.queue("tasks").failed();
      assert.equal(failed.error?.message, "old worker");
      assert.equal(await pq.queue("tasks").retry(failed.id), true);
      assert.deepEqual(await pq.queue("tasks").work({ burst: true }), {
        done: 1,
        retried: 0,
        failed: 0,
      });
    } finally {
      await pq.close();
    }
  });

  test("0.1.0 running create() again does not leave old shared bodies behind", async () => {
    const table = fresh();
    const pq = createPQ(sql, { schema: scratch.schema, table });
    await pq.create();
    // 0.1.0's create() replaces the shared functions with its own bodies.
    for (const statement of v010.ddl(scratch.schema, table).slice(0, 3)) {
      await sql.unsafe(statement);
    }
    assert.deepEqual(await sharedMarkers(), ["pq_notify:null", "pq_wait:null"]);
    await pq.create();
    assert.deepEqual(await sharedMarkers(), current);
    await pq.close();
  });

  test("a table of a newer pq is refused, naming both versions; newer shared objects are left alone", async () => {
    const table = fresh();
    const pq = createPQ(sql, { schema: scratch.schema, table });
    await pq.create();
    await sql`comment on table ${qualified(table)} is 'pq schema 99'`;
    await assert.rejects(pq.create(), {
      name: "PQError",
      code: "SCHEMA_TOO_NEW",
      message: new RegExp(`version 99, newer than this pq's ${TABLE_VERSION}`),
    });
    await sql`comment on table ${qualified(table)} is ${
      sql.unsafe(`'pq schema ${TABLE_VERSION}'`)
    }`;
    // A newer pq's body: same signature, a higher marker.
    const [wait] = await sql`select p.prosrc from pg_proc as p
      join pg_namespace as s on s.oid = p.pronamespace
      where s.nspname = ${scratch.schema} and p.proname = 'pq_wait'`;
    const newer = wait.prosrc.replace(
      `-- pq shared version ${SHARED_VERSION}`,
      "-- pq shared version 99",
    );
    await sql.unsafe(
      `create or replace function "${scratch.schema}".pq_wait(
        p_relid oid, p_queues text[], p_listener text, p_ttl_ms float8
      ) returns void language plpgsql security definer
      set search_path = pg_catalog, pg_temp as $body$${newer}$body$`,
    );
    await pq.create();
    assert.deepEqual(await sharedMarkers(), [
      `pq_notify:${SHARED_VERSION}`,
      "pq_wait:99",
    ]);
    // Restore, for the other tests of this schema.
    await sql.unsafe(
      `create or replace function "${scratch.schema}".pq_wait(
        p_relid oid, p_queues text[], p_listener text, p_ttl_ms float8
      ) returns void language plpgsql security definer
      set search_path = pg_catalog, pg_temp as $body$${wait.prosrc}$body$`,
    );
    await pq.close();
  });

  test("ten processes upgrading a 0.1.0 table at once all succeed", async () => {
    const table = fresh();
    for (const statement of v010.ddl(scratch.schema, table)) {
      await sql.unsafe(statement);
    }
    const clients = Array.from(
      { length: 10 },
      () => postgres(databaseUrl(), { max: 1, onnotice: () => {} }),
    );
    try {
      await Promise.all(
        clients.map((client) =>
          createPQ(client, { schema: scratch.schema, table }).create()
        ),
      );
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
    assert.equal((await objects(table)).comment, `pq schema ${TABLE_VERSION}`);
  });
});
