/**
 * The listener: one connection per PQ, reconnecting when it drops.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { createReport } from "../src/report.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";
import { startProxy } from "./_proxy.ts";

/** Backends of pq listeners on this database. */
async function listenerPids(sql: postgres.Sql): Promise<number[]> {
  const rows = await sql`select pid from pg_stat_activity
    where application_name = 'pq listener' and datname = current_database()`;
  return rows.map((r) => r.pid);
}

describe("listener", () => {
  let t: TestPQ;
  let others: Set<number>;
  const ours = async () =>
    (await listenerPids(t.sql)).filter((pid) => !others.has(pid));

  before(async () => {
    // A poll interval far beyond the test's bounds: only LISTEN can wake.
    t = await openTestPQ("listener", { pollInterval: "1m" });
    // Listeners of other PQs that may be connected to this database.
    others = new Set(await listenerPids(t.sql));
  });
  after(async () => {
    await t.close();
  });

  test("one connection listens for all queues of a PQ", async () => {
    const gets = ["a", "b", "c"].map((name) =>
      t.pq.queue(name).get({ timeout: 500 })
    );
    await sleep(200);
    assert.equal((await ours()).length, 1);
    await Promise.all(gets);
  });

  test("waiting getters look again at once when the listener reconnects", async () => {
    const q = t.pq.queue("reconnect");
    const start = performance.now();
    const got = q.get({ timeout: "20s" });
    await sleep(300);
    const [pid] = await ours();
    assert.ok(pid, "a listener is connected");
    // Kill the listener and put while it is down: that notification is lost.
    const other = postgres(databaseUrl(), { max: 1 });
    try {
      await other`select pg_terminate_backend(${pid})`;
      await other`insert into ${
        other(t.scratch.schema)
      }.queue (queue, data) values ('reconnect', '"missed"')`;
    } finally {
      await other.end();
    }
    assert.equal((await got)?.data, "missed");
    assert.ok(since(start) < 3_000, `found after ${since(start)} ms`);
    const again = await ours();
    assert.ok(again.length > 0 && !again.includes(pid), "a new listener");
  });

  test("a listener whose first statement is lost on a multi-host URL connects again", async () => {
    // postgres.js 3.4.9 with more than one host swallows the error of a new
    // connection that dies while its first statement runs, and that
    // statement never settles (porsager/postgres#1174): the server died as
    // the listener connected, in tests/fault/failover_test.ts. The proxy
    // plays that death; naming it twice gives postgres.js a second host.
    const proxy = await startProxy(databaseUrl());
    const url = new URL(proxy.url);
    const sql = postgres(
      proxy.url.replace(url.host, `${url.host},${url.host}`),
      { max: 1, connect_timeout: 1, onnotice: () => {} },
    );
    const pq = createPQ(sql, { schema: t.scratch.schema, pollInterval: "1m" });
    try {
      await sql`select 1`; // the pool's connection, before the cut
      proxy.cutAtFirstStatement = 1;
      const q = pq.queue("first_lost");
      const got = q.get({ timeout: "30s" });
      await sleep(300);
      assert.equal(proxy.cuts, 1, "the listener's first statement was cut");
      const start = performance.now();
      await t.pq.queue("first_lost").put("found");
      assert.equal((await got)?.data, "found");
      // Its connect_timeout (1 s) plus a few seconds, not the get's 30 s.
      assert.ok(since(start) < 12_000, `found after ${since(start)} ms`);
    } finally {
      await pq.close();
      await sql.end({ timeout: 1 });
      await proxy.close();
    }
  });

  test("two jobs put at once go to two of five waiting getters; the others time out", async () => {
    const q = t.pq.queue("counted");
    const results: (string | null)[] = [];
    const getters = Array.from(
      { length: 5 },
      () =>
        q.get({ timeout: 1_500 }).then((job) => {
          results.push(job ? String(job.data) : null);
        }),
    );
    await sleep(300);
    await q.putMany([{ data: "one" }, { data: "two" }]);
    await Promise.all(getters);
    assert.deepEqual(
      results.filter((r) => r !== null).sort(),
      ["one", "two"],
    );
    assert.equal(results.filter((r) => r === null).length, 3);
  });
});

describe("listener failures", () => {
  let t: TestPQ;

  before(async () => {
    t = await openTestPQ("listener_errors");
  });
  after(async () => {
    await t.close();
  });

  test("a listener that cannot register tells onError, and getters still get jobs by polling", async () => {
    // Without pq_wait, LISTEN wake-ups cannot work in this schema.
    await t.sql`drop function ${t.sql(t.scratch.schema)}.pq_wait`;
    const errors: Error[] = [];
    const pq = createPQ(t.sql, {
      schema: t.scratch.schema,
      pollInterval: "200ms",
      onError: (error) => void errors.push(error),
    });
    try {
      const q = pq.queue("degraded");
      const got = q.get({ timeout: "5s" });
      await sleep(300);
      await t.pq.queue("degraded").put("polled");
      assert.equal((await got)?.data, "polled");
      assert.ok(errors.length > 0, "onError heard of it");
      const error = errors[0] as Error & { code?: string; cause?: unknown };
      assert.equal(error.code, "BACKGROUND");
      assert.equal((error.cause as { code?: string }).code, "42883");
    } finally {
      await pq.close();
    }
  });

  test("without onError, a failure is warned on the console once a minute per message", () => {
    const warned: unknown[][] = [];
    const warn = console.warn;
    console.warn = (...args: unknown[]) => void warned.push(args);
    try {
      const report = createReport();
      report(new Error("listener down"));
      report(new Error("listener down"));
      report(new Error("poll failed"));
      assert.deepEqual(warned.map((args) => args[0]), [
        "pq: listener down",
        "pq: poll failed",
      ]);
    } finally {
      console.warn = warn;
    }
  });
});
