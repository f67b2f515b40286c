/**
 * A waiting registration outlives its 30 s: a getter that waits again and
 * again, with nobody waiting for a moment between its waits (as a worker
 * whose slots all run jobs now and then), is still woken by puts after the
 * registration's first life, not by the poll.
 *
 * In the fault suite because it must run for longer than a registration
 * lives (36 s).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { databaseUrl, testSchema } from "../_db.ts";
import { since, sleep } from "../_pq.ts";

test("puts keep waking a getter that waits again and again, past the registration's life", async () => {
  const sql = postgres(databaseUrl(), { max: 4, onnotice: () => {} });
  const scratch = await testSchema(sql, "registration");
  // A poll far away, so that only LISTEN can wake the getter in time.
  const pq = createPQ(sql, { schema: scratch.schema, pollInterval: "60s" });
  try {
    await pq.create();
    const q = pq.queue<number>("steady");
    const start = performance.now();
    let slowest = 0;
    for (let n = 0; since(start) < 36_000; n++) {
      const got = q.get({ timeout: "5s" });
      await sleep(100); // waiting by now
      const put = performance.now();
      await q.put(n);
      const job = await got;
      assert.equal(
        job?.data,
        n,
        `job ${n}, ${since(start).toFixed(0)} ms into the run`,
      );
      slowest = Math.max(slowest, since(put));
    }
    assert.ok(slowest < 1_000, `slowest wake ${slowest.toFixed(0)} ms`);
    const [row] = await sql.unsafe(
      `select count(*) filter (where expires_at > now())::int as live
      from "${scratch.schema}".pq_waiting`,
    );
    assert.equal(row.live, 1, "the registration is alive");
  } finally {
    await pq.close();
    await scratch.drop();
    await sql.end({ timeout: 1 });
  }
});
