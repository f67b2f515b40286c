/**
 * Stopping and misuse: close() during gets and work(), queues bound to a
 * finished transaction, pools too small for a worker, and quiet startup.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, sleep, type TestPQ } from "./_pq.ts";

describe("stopping", () => {
  let t: TestPQ;
  let n = 0;

  before(async () => {
    t = await openTestPQ("stopping");
  });
  after(async () => {
    await t.close();
  });

  test("close() during blocking gets makes them return null", async () => {
    for (let i = 0; i < 10; i++) {
      const pq = createPQ(t.sql, { schema: t.scratch.schema });
      const q = pq.queue(`closing${n++}`);
      const gets = Array.from({ length: 5 }, () => q.get({ timeout: "10s" }));
      await sleep(i * 5);
      await pq.close();
      assert.deepEqual(await Promise.all(gets), [null, null, null, null, null]);
    }
  });

  test("close() during work() waits for every handler and resolves with the stats", async () => {
    for (let i = 0; i < 10; i++) {
      const pq = createPQ(t.sql, { schema: t.scratch.schema });
      const q = pq.queue(`closework${n++}`);
      let running = 0, finished = 0;
      const task = q.task("nap", async (ms: number) => {
        running++;
        await sleep(ms);
        running--;
        finished++;
      });
      await task.many(Array.from({ length: 6 }, (_, k) => ({ args: 20 + k })));
      const stats = q.work({ concurrency: 3, onEvent: () => {} });
      await sleep(10 + i * 7);
      await pq.close();
      const result = await stats;
      assert.equal(running, 0, "no handler runs after work() settled");
      assert.equal(result.done, finished);
      await t.pq.queue(q.name).clear();
    }
  });

  test("work() stopped in its first milliseconds resolves at once", async () => {
    // Its scheduler's first look for due ticks is still running then; a stop
    // during that look once slept out the scheduler's 60 s recheck.
    const q = t.pq.queue(`earlystop${n++}`);
    q.task("never", () => {});
    for (const wait of [0, 1, 5]) {
      const stop = new AbortController();
      const working = q.work({ signal: stop.signal, onEvent: () => {} });
      await sleep(wait);
      const start = performance.now();
      stop.abort();
      await working;
      const took = performance.now() - start;
      assert.ok(took < 3_000, `stopped ${wait} ms in, after ${took} ms`);
    }
  });

  test("a queue kept from transaction() refuses to work after it ended", async () => {
    const q = t.pq.queue(`ended${n++}`);
    const kept = await q.transaction((qq) => qq);
    await assert.rejects(kept.put("late"), { code: "TRANSACTION_ENDED" });
    await assert.rejects(kept.get({ block: false }), {
      code: "TRANSACTION_ENDED",
    });
    assert.equal(await q.size(), 0, "nothing was written");
  });

  test("a queue kept from with(tx) refuses to work after the transaction ended", async () => {
    const q = t.pq.queue(`endedtx${n++}`);
    await q.put("waiting");
    const kept = await t.sql.begin(async (tx) => {
      const bound = q.with(tx);
      await bound.put("inside");
      return bound;
    });
    await assert.rejects(kept.put("late"), { code: "TRANSACTION_ENDED" });
    await assert.rejects(kept.get({ block: false }), {
      code: "TRANSACTION_ENDED",
    });
    const kept2 = await t.sql.begin((tx) => q.with(tx)); // never used inside
    await assert.rejects(kept2.put("late"), { code: "TRANSACTION_ENDED" });
    assert.equal(await q.size(), 2, "only the two puts before are there");
    await q.clear();
  });

  test("work() refuses a concurrency larger than the pool and warns when it fills it", async () => {
    const small = postgres(databaseUrl(), { max: 2, onnotice: () => {} });
    const warnings: unknown[] = [];
    const pq = createPQ(small, {
      schema: t.scratch.schema,
      onError: (error) => void warnings.push(error),
    });
    try {
      const q = pq.queue(`pool${n++}`);
      q.task("t", () => {});
      await assert.rejects(q.work({ concurrency: 3, burst: true }), {
        name: "RangeError",
        message: /concurrency.*3.*max.*2/,
      });
      await q.work({ concurrency: 2, burst: true });
      assert.equal(warnings.length, 1);
      assert.match(String((warnings[0] as Error).message), /max.*2/);
    } finally {
      await pq.close();
      await small.end();
    }
  });

  test("sixteen idle worker slots add no more than one abort listener each to nothing shared", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.name);
    process.on("warning", onWarning);
    const big = postgres(databaseUrl(), { max: 20, onnotice: () => {} });
    const pq = createPQ(big, { schema: t.scratch.schema });
    try {
      const q = pq.queue(`sixteen${n++}`);
      let running = 0;
      const nap = q.task("nap", async (ms: number) => {
        running++;
        await sleep(ms);
      });
      const stop = new AbortController();
      const work = q.work({ concurrency: 16, signal: stop.signal });
      await sleep(300); // sixteen idle slots wait for work
      await nap.many(Array.from({ length: 16 }, () => ({ args: 1_000 })));
      // Sixteen handlers run (the first waits for telemetry's lazy load).
      const deadline = performance.now() + 5_000;
      while (running < 16 && performance.now() < deadline) await sleep(10);
      assert.equal(running, 16, "each idle slot took a job");
      stop.abort();
      assert.equal((await work).done, 16);
      await sleep(10);
      assert.deepEqual(
        warnings.filter((w) => w === "MaxListenersExceededWarning"),
        [],
      );
    } finally {
      process.off("warning", onWarning);
      await pq.close();
      await big.end();
    }
  });

  test("create() prints no notices, even for a client without onnotice", async () => {
    const notices: unknown[] = [];
    const client = postgres(databaseUrl(), {
      max: 1,
      onnotice: (notice) => void notices.push(notice),
    });
    try {
      const pq = createPQ(client, { schema: t.scratch.schema });
      await pq.create();
      await pq.create();
      await pq.close();
      assert.deepEqual(notices, []);
    } finally {
      await client.end();
    }
  });
});
