/**
 * Privileges: after the owner runs `create()`, a role with nothing but
 * select, insert, update and delete on the job table (and usage on its
 * schema) can use every feature: put, blocking get woken by NOTIFY,
 * transactions, tasks with retries and failures. `create()` is refused for
 * it with PostgreSQL's permission error, and leaves nothing half-created.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";

describe("security", () => {
  let owner: TestPQ;
  /** The restricted role's name, its client and its PQ. */
  let role: string;
  let app: postgres.Sql;
  let password: string;
  let pq: PQ;
  let n = 0;

  before(async () => {
    owner = await openTestPQ("security");
    const schema = owner.sql(owner.scratch.schema);
    role = `pq_test_app_${crypto.randomUUID().slice(0, 8)}`;
    // A password, for servers that ask for one (the embedded PostgreSQL);
    // random, as the role exists only for this test.
    password = crypto.randomUUID();
    await owner.sql`create role ${owner.sql(role)} login password ${
      owner.sql.unsafe(`'${password}'`)
    }`;
    await owner.sql`grant usage on schema ${schema} to ${owner.sql(role)}`;
    await owner.sql`grant select, insert, update, delete
      on ${schema}.queue to ${owner.sql(role)}`;
    await owner.sql`create table ${schema}.effects (job_id bigint, note text)`;
    await owner.sql`grant insert, select on ${schema}.effects
      to ${owner.sql(role)}`;
    app = postgres(databaseUrl(), {
      username: role,
      password,
      max: 4,
      onnotice: () => {},
    });
    // The poll is far beyond the test's bounds: only NOTIFY wakes getters.
    pq = createPQ(app, { schema: owner.scratch.schema, pollInterval: "1m" });
  });

  after(async () => {
    await pq?.close();
    await app?.end({ timeout: 1 });
    await owner.close();
    // Dropping the schema took the grants with it.
    const other = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    try {
      await other`drop role if exists ${other(role)}`;
    } finally {
      await other.end();
    }
  });

  test("the role really has only the four table privileges", async () => {
    const [row] = await app`select current_user as me,
      has_schema_privilege(${owner.scratch.schema}, 'create') as create,
      has_table_privilege(${`"${owner.scratch.schema}".pq_waiting`},
        'select') as waiting,
      has_table_privilege(${`"${owner.scratch.schema}".queue`},
        'truncate') as truncate`;
    assert.deepEqual({ ...row }, {
      me: role,
      create: false,
      waiting: false,
      truncate: false,
    });
  });

  test("it can put, get, size, update and clear", async () => {
    const q = pq.queue(`plain${n++}`);
    const id = await q.put({ kind: "Cox" });
    await q.putMany([{ data: 2 }, { data: 3, scheduleAt: "1h" }]);
    assert.equal(await q.size(), 2);
    const job = await q.get({ block: false });
    assert.equal(job?.id, id);
    await job!.update({ kind: "Fuji" });
    assert.equal(await q.clear(), 3);
  });

  test("its blocking get is woken by NOTIFY from another connection", async () => {
    const q = pq.queue<string>(`blocking${n++}`);
    const start = performance.now();
    const got = q.get({ timeout: "20s" });
    await sleep(300);
    await owner.pq.queue(q.name).put("from the owner");
    const job = await got;
    assert.equal(job?.data, "from the owner");
    assert.ok(since(start) < 3_000, `woken after ${since(start)} ms`);
  });

  test("its transactions commit and roll back", async () => {
    const q = pq.queue(`tx${n++}`);
    await q.put("kept");
    await assert.rejects(
      q.transaction(async (bound) => {
        await bound.get({ block: false });
        await bound.put("dropped");
        throw new Error("roll back");
      }),
      /roll back/,
    );
    assert.equal((await q.get({ block: false }))?.data, "kept");
    assert.equal(await q.get({ block: false }), null);
  });

  test("it works tasks, with retries and failed jobs", async () => {
    const q = pq.queue(`tasks${n++}`);
    const schema = owner.scratch.schema;
    const attempts: number[] = [];
    const eat = q.task("eat", async (kind: string, job) => {
      await job.tx`insert into ${job.tx(schema)}.effects (job_id, note)
        values (${job.id}, ${kind})`;
    });
    const flaky = q.task("flaky", (_: unknown, job) => {
      attempts.push(job.attempt);
      if (job.attempt < 2) throw new Error("first try fails");
    }, { maxRetries: 1, retryIn: 0 });
    const broken = q.task("broken", () => {
      throw new Error("always fails");
    }, { maxRetries: 1, retryIn: 0 });
    const ok = await eat("Cox");
    await flaky({});
    const bad = await broken({});
    const stats = await q.work({ burst: true, onEvent: () => {} });
    assert.deepEqual(stats, { done: 2, retried: 2, failed: 1 });
    assert.deepEqual(attempts, [1, 2]);
    const rows = await owner.sql`select note from ${
      owner.sql(schema)
    }.effects where job_id = ${ok}`;
    assert.deepEqual(rows.map((r) => r.note), ["Cox"]);
    const failed = await q.failed();
    assert.deepEqual(failed.map((f) => [f.id, f.error?.message]), [
      [bad, "always fails"],
    ]);
    assert.equal(await q.retry(bad), true);
    assert.equal(await q.size(), 1);
    // A worker that waits is woken by NOTIFY too.
    const stop = new AbortController();
    const done: string[] = [];
    const later = q.task("later", (_: unknown, job) => {
      done.push(job.id);
      stop.abort();
    });
    await q.clear();
    const work = q.work({ signal: stop.signal });
    await sleep(300);
    const id = await later({});
    await work;
    assert.deepEqual(done, [id]);
  });

  test("a role without privileges on the table cannot register waits on it", async () => {
    const stranger = `pq_test_stranger_${crypto.randomUUID().slice(0, 8)}`;
    const schema = owner.sql(owner.scratch.schema);
    await owner.sql`create role ${owner.sql(stranger)} login password ${
      owner.sql.unsafe(`'${password}'`)
    }`;
    const client = postgres(databaseUrl(), {
      username: stranger,
      password,
      max: 1,
      onnotice: () => {},
    });
    try {
      // Usage on the schema only: it can call the function, nothing more.
      await owner.sql`grant usage on schema ${schema} to ${
        owner.sql(stranger)
      }`;
      const [{ relid }] = await owner
        .sql`select ${`"${owner.scratch.schema}".queue`}::regclass::oid::int8 as relid`;
      await assert.rejects(
        client.unsafe(
          `select "${owner.scratch.schema}".pq_wait($1::oid, $2::text[], 'x', 60000)`,
          [relid, ["spy"]],
        ),
        { code: "42501" },
      );
      const after = await owner.sql`select count(*)::int as n
        from ${schema}.pq_waiting where queue = 'spy'`;
      assert.equal(after[0].n, 0, "no registration was made");
      // The role with table privileges still registers (through SET ROLE too).
      await owner.sql.begin(async (tx) => {
        await tx`set local role ${tx(role)}`;
        await tx.unsafe(
          `select "${owner.scratch.schema}".pq_wait($1::oid, $2::text[], 'y', 0)`,
          [relid, ["ok"]],
        );
      });
    } finally {
      await client.end();
      await owner.sql`revoke all on schema ${schema} from ${
        owner.sql(stranger)
      }`;
      await owner.sql`drop role ${owner.sql(stranger)}`;
    }
  });

  test("create() is refused with a permission error and creates nothing", async () => {
    // A new schema: the role may not create one in the database.
    const fresh = `pq_test_denied_${crypto.randomUUID().slice(0, 8)}`;
    await assert.rejects(createPQ(app, { schema: fresh }).create(), (error) => {
      assert.equal((error as { code?: string }).code, "42501");
      assert.match(
        (error as Error).message,
        /^permission denied for database /,
      );
      return true;
    });
    const [schema] = await owner.sql`select count(*)::int as n
      from pg_namespace where nspname = ${fresh}`;
    assert.equal(schema.n, 0, "no schema was created");

    // A new table in the existing schema: not allowed either.
    const before = await owner.sql`select count(*)::int as n from pg_class
      where relnamespace = ${owner.scratch.schema}::regnamespace`;
    await assert.rejects(
      createPQ(app, { schema: owner.scratch.schema, table: "jobs" }).create(),
      (error) => {
        assert.equal((error as { code?: string }).code, "42501");
        assert.match(
          (error as Error).message,
          new RegExp(`^permission denied for schema ${owner.scratch.schema}`),
        );
        return true;
      },
    );
    const after = await owner.sql`select count(*)::int as n from pg_class
      where relnamespace = ${owner.scratch.schema}::regnamespace`;
    assert.equal(after[0].n, before[0].n, "nothing was created");

    // The existing table still works for both roles.
    const q = pq.queue(`after${n++}`);
    await owner.pq.queue(q.name).put("still fine");
    assert.equal((await q.get({ block: false }))?.data, "still fine");
  });
});
