/**
 * Bloat: where the server's autovacuum is off, pq vacuums its own table
 * after many jobs were taken, so the table does not grow without bound.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { openTestPQ, since, sleep, type TestPQ } from "../_pq.ts";

describe("vacuum", () => {
  let t: TestPQ;
  let autovacuum: string;
  const opened = performance.now();

  before(async () => {
    t = await openTestPQ("vacuum");
    [{ autovacuum }] = await t.sql`select current_setting('autovacuum')
      as autovacuum`;
  });
  after(async () => {
    await t.close();
  });

  /** How many times the table was vacuumed by hand (not by autovacuum). */
  const vacuums = async () => {
    const [row] = await t.sql`select vacuum_count::int as n
      from pg_stat_user_tables
      where schemaname = ${t.scratch.schema} and relname = 'queue'`;
    return row?.n ?? 0;
  };

  test("10,000 jobs taken after 10 s: pq vacuums only if autovacuum is off", async () => {
    const q = t.pq.queue("bloat");
    const noop = q.task("noop", () => {});
    for (let i = 0; i < 10; i++) {
      await noop.many(Array.from({ length: 1_000 }, (_, n) => ({ args: n })));
    }
    await q.work({ burst: true, concurrency: 4 });
    // The first vacuum comes 10 s after the PQ opened at the earliest.
    await sleep(Math.max(0, 10_500 - since(opened)));
    await noop(0);
    await q.work({ burst: true });
    let count = 0;
    for (let i = 0; i < 50 && count === 0; i++) {
      await sleep(100);
      count = await vacuums();
    }
    if (autovacuum === "off") {
      assert.equal(count, 1, "pq vacuumed its table once");
    } else {
      assert.equal(count, 0, "the server's autovacuum does it");
    }
  });
});
