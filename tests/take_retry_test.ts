/**
 * A waiting get() whose take loses its connection takes again while its
 * timeout allows (src/take_retry.ts). A proxy between the PQ and the server
 * cuts the take's connection; the puts go to the server directly.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ } from "../mod.ts";
import { isConnectionError } from "../src/safe_transaction.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";
import { startProxy, type TcpProxy } from "./_proxy.ts";

/** A PQ whose every connection goes through a proxy of its own. */
interface Proxied {
  proxy: TcpProxy;
  sql: postgres.Sql;
  pq: PQ;
  /** What the PQ reported to `onError`. */
  reports: Error[];
  close(): Promise<void>;
}

/**
 * Resolves once no statement went through the proxy for 300 ms: the getter
 * waits, and its listener has connected and registered its queue.
 */
async function quiet(proxy: TcpProxy): Promise<void> {
  for (let i = 0; i < 20; i++) {
    const seen = proxy.statements;
    await sleep(300);
    if (proxy.statements === seen) return;
  }
  throw new Error("the proxy never went quiet");
}

describe("take retry", () => {
  let t: TestPQ;

  before(async () => {
    t = await openTestPQ("take_retry");
  });
  after(async () => {
    await t.close();
  });

  async function proxied(): Promise<Proxied> {
    const proxy = await startProxy(databaseUrl());
    // No type lookup on new connections: its promise is dropped by
    // postgres.js 3.4.9 and would escape when a cut hits it (#1192).
    const sql = postgres(proxy.url, {
      max: 2,
      fetch_types: false,
      onnotice: () => {},
    });
    const reports: Error[] = [];
    // A poll far beyond the tests' bounds: only LISTEN and retries act.
    const pq = createPQ(sql, {
      schema: t.scratch.schema,
      pollInterval: "1m",
      onError: (error) => reports.push(error),
    });
    return {
      proxy,
      sql,
      pq,
      reports,
      async close() {
        await pq.close();
        await sql.end({ timeout: 1 });
        await proxy.close();
      },
    };
  }

  test("a waiting get() whose take loses its connection takes again and gets the job put afterwards", async () => {
    const p = await proxied();
    try {
      const got = p.pq.queue("cut").get({ timeout: "20s" });
      await quiet(p.proxy);
      p.proxy.cutAtNextStatement = 1;
      const start = performance.now();
      // The put's NOTIFY wakes the getter; its take is cut.
      await t.pq.queue("cut").put("after the cut");
      assert.equal((await got)?.data, "after the cut");
      assert.equal(p.proxy.statementCuts, 1, "the take was cut");
      assert.ok(since(start) < 5_000, `got it after ${since(start)} ms`);
      assert.equal(p.reports.length, 1, "the lost take is reported once");
      assert.ok(isConnectionError(p.reports[0].cause), String(p.reports[0]));
    } finally {
      await p.close();
    }
  });

  test("a waiting get() whose server stays unreachable resolves null at its timeout", async () => {
    const p = await proxied();
    try {
      const start = performance.now();
      const got = p.pq.queue("down").get({ timeout: "3s" });
      await quiet(p.proxy);
      p.proxy.cutAtNextStatement = 1;
      p.proxy.stopListening(); // every new connection is refused
      await t.pq.queue("down").put("unreachable");
      assert.equal(await got, null);
      const waited = since(start);
      assert.ok(waited > 2_800 && waited < 6_000, `null after ${waited} ms`);
      assert.equal(p.proxy.statementCuts, 1, "the take was cut");
      assert.ok(isConnectionError(p.reports[0]?.cause), String(p.reports[0]));
      assert.equal(await t.pq.queue("down").size(), 1, "the job waits");
      await t.pq.queue("down").clear();
    } finally {
      await p.close();
    }
  });

  test("an abort while a get() takes again rejects with the signal's reason", async () => {
    const p = await proxied();
    try {
      const controller = new AbortController();
      const got = p.pq.queue("abort").get({
        timeout: "30s",
        signal: controller.signal,
      });
      await quiet(p.proxy);
      p.proxy.cutAtNextStatement = 1;
      p.proxy.stopListening();
      await t.pq.queue("abort").put("never got");
      await sleep(500); // cut, refused, pausing
      const reason = new Error("enough");
      const start = performance.now();
      controller.abort(reason);
      await assert.rejects(got, (error) => error === reason);
      assert.ok(since(start) < 1_000, `rejected after ${since(start)} ms`);
      await t.pq.queue("abort").clear();
    } finally {
      await p.close();
    }
  });

  test("a get() in a transaction whose take loses its connection rejects with the connection error", async () => {
    const p = await proxied();
    try {
      let thrown: unknown = null;
      const begun = p.sql.begin(async (tx) => {
        const bound = p.pq.queue("in_tx").with(tx);
        await tx`select 1`; // the binding's mark went through
        p.proxy.cutAtNextStatement = 1;
        thrown = await bound.get({ timeout: "20s" }).then(() => null, (e) => e);
        // Never settle: postgres.js would write ROLLBACK on the dead
        // connection (porsager/postgres#1154).
        return new Promise<never>(() => {});
      });
      await assert.rejects(begun, (error) => isConnectionError(error));
      // begin() rejects as the connection closes; the get soon after.
      for (let i = 0; i < 50 && thrown === null; i++) await sleep(20);
      assert.ok(isConnectionError(thrown), `the get threw ${thrown}`);
      assert.equal(p.proxy.statementCuts, 1);
    } finally {
      await p.close();
    }
  });

  test("a get() whose take fails with another error rejects at once", async () => {
    const sql = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    // Never created: the take fails with "relation does not exist".
    const pq = createPQ(sql, { schema: t.scratch.schema, table: "missing" });
    try {
      const start = performance.now();
      await assert.rejects(pq.queue("q").get({ timeout: "20s" }), {
        code: "42P01",
      });
      assert.ok(since(start) < 2_000, `rejected after ${since(start)} ms`);
    } finally {
      await pq.close();
      await sql.end();
    }
  });
});
