/**
 * A worker slot whose BEGIN never gets an answer gives that attempt up and
 * tries again, and a stop does not wait for it (src/safe_transaction.ts,
 * src/connect_deadline.ts). A proxy between the worker and the server holds
 * the connection that sends the BEGIN; the puts go to the server directly.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ, type WorkEvent } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";
import { startProxy, type TcpProxy } from "./_proxy.ts";

/** A BEGIN as postgres.js sends it for `sql.begin()`. */
const isBegin = (text: string) => /^\s*begin\b/i.test(text);

describe("worker begin", () => {
  let t: TestPQ;

  before(async () => {
    t = await openTestPQ("worker_begin");
  });
  after(async () => {
    await t.close();
  });

  /** A PQ whose connections go through `proxy`. */
  function proxiedPQ(
    proxy: TcpProxy,
    options: postgres.Options<Record<string, never>>,
  ): { sql: postgres.Sql; pq: PQ } {
    // No type lookup on new connections: its promise is dropped by
    // postgres.js 3.4.9 and would escape when the proxy ends it (#1192).
    const sql = postgres(proxy.url, {
      ...options,
      fetch_types: false,
      onnotice: () => {},
    });
    return { sql, pq: createPQ(sql, { schema: t.scratch.schema }) };
  }

  /** Waits until `done()` or `ms` passed. */
  async function until(done: () => boolean, ms: number): Promise<void> {
    const start = performance.now();
    while (!done() && since(start) < ms) await sleep(50);
  }

  test("a slot whose BEGIN gets no answer gives it up after connect_timeout + 5 s and goes on with jobs", async () => {
    const proxy = await startProxy(databaseUrl());
    // connect_timeout 1 s: the BEGIN is given up after 1 + 5 s.
    const { sql, pq } = proxiedPQ(proxy, { max: 3, connect_timeout: 1 });
    const q = pq.queue("stalled");
    const done: number[] = [];
    q.task("note", (n: number) => {
      done.push(n);
    });
    const events: WorkEvent[] = [];
    const stop = new AbortController();
    // Enqueued straight to the server (t.pq does not work this queue).
    const note = t.pq.queue("stalled").task("note", (_: number) => {});
    try {
      await note.many([1, 2, 3].map((n) => ({ args: n })));
      let stalled = 0;
      proxy.stallWhen = (text) => isBegin(text) && stalled++ === 0;
      const start = performance.now();
      const working = q.work({
        concurrency: 1,
        signal: stop.signal,
        onEvent: (event) => events.push(event),
      });
      await until(() => done.length === 3, 20_000);
      const took = since(start);
      assert.deepEqual(done.sort(), [1, 2, 3]);
      assert.equal(proxy.stalls, 1, "one BEGIN was held");
      assert.ok(took > 5_000 && took < 15_000, `done after ${took} ms`);
      const errors = events.filter((e) => e.type === "error");
      assert.equal(errors.length, 1, "the given-up BEGIN is reported");
      assert.match(
        String((errors[0] as { error: Error }).error.message),
        /did not begin within 6000 ms/,
      );
      // The slot goes on: jobs put now are done as well.
      await note.many([4, 5].map((n) => ({ args: n })));
      await until(() => done.length === 5, 10_000);
      assert.deepEqual(done.sort(), [1, 2, 3, 4, 5]);
      const stopped = performance.now();
      stop.abort();
      assert.equal((await working).done, 5);
      assert.ok(since(stopped) < 3_000, `stopped after ${since(stopped)} ms`);
    } finally {
      stop.abort();
      await pq.close();
      await sql.end({ timeout: 1 });
      await proxy.close();
    }
  });

  test("a stop does not wait for slots whose BEGIN gets no answer", async () => {
    const proxy = await startProxy(databaseUrl());
    // The default connect_timeout (30 s): the BEGINs are given up only
    // after 35 s, but the stop ends the wait for them at once.
    const { sql, pq } = proxiedPQ(proxy, { max: 3 });
    const q = pq.queue("stop_stalled");
    let ran = 0;
    q.task("note", () => {
      ran++;
    });
    const stop = new AbortController();
    try {
      await t.pq.queue("stop_stalled").task("note", () => {})(null);
      proxy.stallWhen = isBegin;
      const working = q.work({
        concurrency: 2,
        signal: stop.signal,
        onEvent: () => {},
      });
      await until(() => proxy.stalls === 2, 5_000);
      assert.equal(proxy.stalls, 2, "both slots wait for their BEGIN");
      const start = performance.now();
      stop.abort();
      const stats = await working;
      assert.ok(since(start) < 2_000, `stopped after ${since(start)} ms`);
      assert.equal(stats.done, 0);
      assert.equal(ran, 0);
      assert.equal(await t.pq.queue("stop_stalled").size(), 1, "job kept");
    } finally {
      stop.abort();
      await pq.close();
      await sql.end({ timeout: 1 });
      await proxy.close();
    }
  });
});
