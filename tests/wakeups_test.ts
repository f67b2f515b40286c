/**
 * Wake-ups: LISTEN whatever the poll interval, as many waiters woken as jobs
 * came due, and due jobs never withheld by an unrelated transaction.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";

describe("wake-ups", () => {
  let t: TestPQ;
  let n = 0;

  before(async () => {
    t = await openTestPQ("wakeups");
  });
  after(async () => {
    await t.close();
  });

  test("with pollInterval 40s, LISTEN still wakes a getter that has waited longer than a registration lives", async () => {
    const pq = createPQ(t.sql, {
      schema: t.scratch.schema,
      pollInterval: "40s",
    });
    try {
      const q = pq.queue(`slowpoll${n++}`);
      const got = q.get({ timeout: "25s" });
      // Registrations used to live 10 s and were renewed only by the poll.
      await sleep(12_000);
      const put = performance.now();
      await t.pq.queue(q.name).put("late");
      const job = await got;
      assert.equal(job?.data, "late");
      assert.ok(since(put) < 1_000, `woken ${since(put)} ms after the put`);
    } finally {
      await pq.close();
    }
  });

  test("four waiters wake within ms when four scheduled jobs come due together", async () => {
    const pq = createPQ(t.sql, {
      schema: t.scratch.schema,
      pollInterval: "5s",
    });
    try {
      const q = pq.queue(`due${n++}`);
      const start = performance.now();
      const returned: number[] = [];
      const getters = Array.from(
        { length: 4 },
        () =>
          q.get({ timeout: "10s" }).then((job) => {
            returned.push(since(start));
            return job;
          }),
      );
      await sleep(50);
      await q.putMany([1, 2, 3, 4].map((data) => ({ data })), {
        scheduleAt: 300,
      });
      const jobs = await Promise.all(getters);
      assert.deepEqual(jobs.map((j) => j?.data).sort(), [1, 2, 3, 4]);
      const latest = Math.max(...returned);
      assert.ok(latest < 1_500, `returned at ${returned.map(Math.round)} ms`);
    } finally {
      await pq.close();
    }
  });

  test("a transaction that takes a better job does not withhold a due job from others, and nobody busy-polls", async () => {
    const q = t.pq.queue(`withheld${n++}`);
    await q.put("due", { scheduleAt: 200, expectedAt: "1h" });
    await q.put("better", { expectedAt: "1m" });
    await sleep(400); // the scheduled job is due now, still 'scheduled'
    // Count the statements of ten waiting getters on a client of their own.
    let statements = 0;
    const counted = postgres(databaseUrl(), {
      max: 4,
      onnotice: () => {},
      debug: () => void statements++,
    });
    const pq = createPQ(counted, { schema: t.scratch.schema });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const holder = q.transaction(async (qq) => {
      const job = await qq.get({ block: false });
      assert.equal(job?.data, "better");
      await held; // keep the transaction open
    });
    try {
      await sleep(100);
      const start = performance.now();
      const job = await pq.queue(q.name).get({ timeout: "3s" });
      assert.equal(job?.data, "due", "the due job is there for others");
      assert.ok(since(start) < 1_000, `after ${since(start)} ms`);
      // Ten getters waiting on an empty queue for two seconds.
      statements = 0;
      await Promise.all(
        Array.from(
          { length: 10 },
          () => pq.queue(q.name).get({ timeout: "2s" }),
        ),
      );
      assert.ok(statements < 40, `${statements} statements in 2 s`);
    } finally {
      release();
      await holder;
      await pq.close();
      await counted.end();
    }
  });
});
