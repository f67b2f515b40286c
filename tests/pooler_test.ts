/**
 * pq behind a real PgBouncer in transaction mode, as on Supabase, Neon and
 * most serverless hosts: `postgres(url, { prepare: false })` and
 * `createPQ(sql, { listen: false })`. Every statement may land on another
 * server connection, so nothing may rely on session state.
 *
 * The client reaches PgBouncer through a recording proxy (`_proxy.ts`), and
 * the last test reads everything pq sent: no LISTEN, no SET outside a
 * transaction, no session advisory lock, no temporary table, no named
 * prepared statement.
 *
 * Skipped, with the reason printed, when PgBouncer is not installed or does
 * not start (`.ci/run` installs it: `apt-get install -y pgbouncer`).
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ, type Queue } from "../mod.ts";
import { databaseUrl, type TestSchema, testSchema } from "./_db.ts";
import { since } from "./_pq.ts";
import { startProxy, type TcpProxy } from "./_proxy.ts";
import {
  findPgBouncer,
  INSTALL_HINT,
  type PgBouncer,
  startPgBouncer,
} from "./pgbouncer.ts";

const POLL_MS = 250;
const missing = findPgBouncer() === null
  ? `PgBouncer is not installed (install it with: ${INSTALL_HINT})`
  : undefined;
if (missing) console.warn(`pooler tests SKIPPED: ${missing}`);

/** The parts of node:test's test context these tests use. */
interface Context {
  skip(message?: string): void;
}

describe("behind PgBouncer in transaction mode", { skip: missing }, () => {
  let bouncer: PgBouncer | undefined;
  let skipped: string | undefined;
  let proxy: TcpProxy;
  let sql: postgres.Sql;
  let scratch: TestSchema;
  let pq: PQ;
  let n = 0;
  const fresh = <T = unknown>(): Queue<T> => pq.queue<T>(`q${n++}`);

  before(async () => {
    const started = await startPgBouncer(databaseUrl());
    if (typeof started === "string") {
      skipped = started;
      console.warn(`pooler tests SKIPPED: ${started}`);
      return;
    }
    bouncer = started;
    proxy = await startProxy(bouncer.url);
    sql = postgres(proxy.url, { prepare: false, max: 10, onnotice: () => {} });
    scratch = await testSchema(sql, "pooler");
    pq = createPQ(sql, {
      schema: scratch.schema,
      listen: false,
      pollInterval: `${POLL_MS}ms`,
    });
    await pq.create();
  });
  after(async () => {
    if (!bouncer) return;
    await pq.close();
    await scratch.drop();
    await sql.end({ timeout: 1 });
    await proxy.close();
    await bouncer.stop();
  });

  /** True (and marks the test skipped) when PgBouncer did not start. */
  function skip(t: Context): boolean {
    if (skipped) t.skip(skipped);
    return skipped !== undefined;
  }

  test("put, get, size, update and clear round-trip", async (t) => {
    if (skip(t)) return;
    const q = fresh<{ kind: string }>();
    const id = await q.put({ kind: "Cox" });
    await q.putMany([{ data: { kind: "Fuji" } }, { data: { kind: "Gala" } }]);
    assert.equal(await q.size(), 3);
    const job = await q.get();
    assert.equal(job?.id, id);
    assert.deepEqual(job?.data, { kind: "Cox" });
    assert.equal((await q.get({ block: false }))?.data.kind, "Fuji");
    const rich = pq.queue(`rich${n++}/pickle`);
    const when = new Date("2024-02-29T12:00:00Z");
    await rich.put({ when, big: 10n ** 20n });
    assert.deepEqual((await rich.get())?.data, { when, big: 10n ** 20n });
    assert.equal(await q.clear(), 1);
    assert.equal(await q.get({ block: false }), null);
  });

  test("a scheduled job is not taken early, then a blocking get returns it", async (t) => {
    if (skip(t)) return;
    const q = fresh<string>();
    const start = performance.now();
    await q.put("later", { scheduleAt: "800ms" });
    assert.equal(await q.get({ block: false }), null);
    assert.equal(await q.size(), 0);
    const job = await q.get({ timeout: "5s" });
    const waited = since(start);
    assert.equal(job?.data, "later");
    assert.ok(waited >= 700, `taken after ${waited.toFixed(0)} ms`);
    assert.ok(waited < 800 + POLL_MS * 1.1 + 750, `${waited.toFixed(0)} ms`);
  });

  test("transaction() rolls back a put and a get when it throws", async (t) => {
    if (skip(t)) return;
    const q = fresh<string>();
    await q.put("kept");
    await assert.rejects(
      q.transaction(async (tq) => {
        assert.equal((await tq.get())?.data, "kept");
        await tq.put("never");
        throw new Error("roll back");
      }),
      /roll back/,
    );
    assert.equal(await q.size(), 1);
    assert.equal((await q.get({ block: false }))?.data, "kept");
    assert.equal(await q.get({ block: false }), null);
    // And with the caller's transaction: committed together.
    await sql.begin(async (tx) => {
      await q.with(tx).put("committed");
    });
    assert.equal((await q.get({ block: false }))?.data, "committed");
  });

  test("8 producers x 100 jobs with 4 consumers: each job exactly once", async (t) => {
    if (skip(t)) return;
    const q = fresh<string>();
    const seen = new Map<string, number>();
    let producing = true;
    const producers = Array.from({ length: 8 }, async (_, p) => {
      for (let i = 0; i < 100; i++) await q.put(`${p}:${i}`);
    });
    const consumers = Array.from({ length: 4 }, async () => {
      for (;;) {
        const job = await q.get({ timeout: 500 });
        if (job) seen.set(job.data, (seen.get(job.data) ?? 0) + 1);
        else if (!producing) return;
      }
    });
    await Promise.all(producers);
    producing = false;
    await Promise.all(consumers);
    assert.equal(seen.size, 800);
    assert.deepEqual([...new Set(seen.values())], [1]);
    assert.equal(await q.size(), 0);
  });

  test("a burst worker runs task jobs, their job.tx writes commit, a failure is kept", async (t) => {
    if (skip(t)) return;
    const q = fresh();
    const effects = `${scratch.schema}.effects`;
    await sql`create table ${
      sql(scratch.schema)
    }.effects (job_id bigint primary key, n int)`;
    const record = q.task("record", async (n: number, job) => {
      await job.tx`insert into ${job.tx(scratch.schema)}.effects
        (job_id, n) values (${job.id}, ${n})`;
    });
    const fail = q.task("fail", () => {
      throw new Error("always fails");
    });
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push(await record(i));
    await fail(null);
    const events: string[] = [];
    const stats = await q.work({
      burst: true,
      concurrency: 4,
      signal: AbortSignal.timeout(25_000),
      onEvent: (event) => events.push(event.type),
    });
    assert.deepEqual(stats, { done: 40, retried: 0, failed: 1 });
    const rows = await sql`select job_id::text as id from ${
      sql(scratch.schema)
    }.effects order by job_id`;
    assert.deepEqual(rows.map((r) => r.id), ids, `rows of ${effects}`);
    const failed = await q.failed();
    assert.equal(failed.length, 1);
    assert.equal(failed[0].error?.message, "always fails");
    assert.equal(await q.size(), 0);
  });

  test("pq sent nothing that needs a session: no LISTEN, SET, session lock, temp table or named statement", async (t) => {
    if (skip(t)) return;
    // Let the PQ poll once more so its poll is among the statements read.
    await fresh().get({ timeout: POLL_MS * 2 });
    const texts = proxy.texts.map((text) => text.trim());
    const banned: [string, RegExp][] = [
      ["LISTEN", /^(listen|unlisten)\b/i],
      ["a registration for LISTEN", /^select\b[^]*\bpq_wait\s*\(/i],
      ["SET outside a transaction", /^(set|reset)\s+(?!local\b)/i],
      ["a session advisory lock", /pg_(try_)?advisory_lock(_shared)?\s*\(/i],
      ["a temporary table", /\bcreate\s+(global\s+|local\s+)?temp(orary)?\b/i],
      ["PREPARE", /^prepare\b/i],
      ["a cursor kept after commit", /\bwith\s+hold\b/i],
    ];
    const found = texts.flatMap((text) =>
      banned.filter(([, pattern]) => pattern.test(text)).map(([what]) =>
        `${what}: ${text.slice(0, 80)}`
      )
    );
    assert.deepEqual(found, []);
    assert.deepEqual(proxy.namedStatements, []);
    assert.ok(texts.length > 50, `read ${texts.length} statements`);
    // Transactions were opened by sql.begin() only, and all were closed.
    const begins = texts.filter((text) => /^begin\b/i.test(text)).length;
    const ends = texts.filter((text) => /^(commit|rollback)$/i.test(text))
      .length;
    assert.ok(begins > 0);
    assert.equal(begins, ends);
  });
});
