/**
 * Recurring schedules: validation, runtime changes, exactly one job per
 * tick across worker processes, missed ticks and backfill, daylight saving
 * time, and serverless bursts.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import type { Queue } from "../mod.ts";
import { parseCron } from "../src/cron.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, sleep, type TestPQ } from "./_pq.ts";
import { type Child, spawnTs } from "./_spawn.ts";

describe("schedules", () => {
  let t: TestPQ;
  let n = 0;
  const fresh = (): Queue => t.pq.queue(`s${n++}`);

  before(async () => {
    t = await openTestPQ("schedules");
    await t.sql`create table ${t.sql(t.scratch.schema)}.ticks (
      tick timestamptz not null, job_id bigint, pid int, kind text)`;
  });
  after(async () => {
    await t.close();
  });

  test("schedule() refuses bad expressions, time zones, tasks and options, storing nothing", async () => {
    const q = fresh();
    const task = q.task("t", () => {});
    await assert.rejects(q.schedule("a", "61 * * * *", task), {
      name: "TypeError",
      message: /Cannot schedule "a": invalid cron expression "61 \* \* \* \*"/,
    });
    await assert.rejects(q.schedule("a", "", task), /non-empty string/);
    await assert.rejects(
      q.schedule("a", "0 3 * * *", task, { timezone: "Mars/Olympus" }),
      /'timezone' must be a time zone name such as "Europe\/Oslo": received "Mars\/Olympus"/,
    );
    await assert.rejects(
      q.schedule("a", "0 0 30 2 *", task),
      /never runs/,
    );
    await assert.rejects(
      q.schedule("a", "@daily", 42 as never),
      /the task must be/,
    );
    await assert.rejects(q.schedule("", "@daily", task), /A schedule name/);
    await assert.rejects(
      q.schedule("a", "@daily", task, { every: 1 } as never),
      /unknown option 'every'/,
    );
    assert.deepEqual(await q.schedules(), []);
  });

  test("an unchanged schedule keeps its next tick; a changed one starts anew; pause, resume and unschedule", async () => {
    const q = fresh();
    const task = q.task("t", () => {});
    await q.schedule("hourly", "0 * * * *", task, { args: { a: 1 } });
    const [first] = await q.schedules();
    await t.sql`update ${t.sql(t.scratch.schema)}.pq_schedules
      set next_at = next_at + interval '1 hour' where name = 'hourly'`;
    await q.schedule("hourly", "0 * * * *", task, { args: { a: 1 } });
    const [same] = await q.schedules();
    assert.equal(
      same.nextAt.getTime(),
      first.nextAt.getTime() + 3_600_000,
      "called again unchanged: its next tick is kept",
    );
    await q.schedule("hourly", "30 * * * *", task, {
      args: { a: 2 },
      timezone: "Asia/Kolkata",
    });
    const [changed] = await q.schedules();
    assert.deepEqual(
      { ...changed, nextAt: undefined },
      {
        name: "hourly",
        cron: "30 * * * *",
        timezone: "Asia/Kolkata",
        task: "t",
        args: { a: 2 },
        backfillMs: null,
        nextAt: undefined,
        lastAt: null,
        paused: false,
      },
    );
    assert.ok(changed.nextAt.getTime() - Date.now() <= 3_600_000);
    assert.equal(await q.pauseSchedule("hourly"), true);
    assert.equal((await q.schedules())[0].paused, true);
    assert.equal(await q.resumeSchedule("hourly"), true);
    assert.equal((await q.schedules())[0].paused, false);
    assert.equal(await q.unschedule("hourly"), true);
    assert.equal(await q.unschedule("hourly"), false);
    assert.equal(await q.pauseSchedule("hourly"), false);
  });

  test("daylight saving time: a daily 02:30 runs once on the spring-forward and the fall-back day", async () => {
    const cron = await parseCron("30 2 * * *", "Europe/Oslo");
    const runs = (from: string, to: string) =>
      cron.between(new Date(from), new Date(to), 100).map((d) =>
        d.toISOString()
      );
    // 2026-03-29: 02:00 -> 03:00 in Oslo; 02:30 does not exist.
    assert.deepEqual(runs("2026-03-28T00:00:00Z", "2026-03-30T23:59:59Z"), [
      "2026-03-28T01:30:00.000Z",
      "2026-03-29T01:00:00.000Z", // 03:00 CEST, the first valid time after
      "2026-03-30T00:30:00.000Z",
    ]);
    // 2026-10-25: 03:00 -> 02:00 in Oslo; 02:30 happens twice, runs once.
    assert.deepEqual(runs("2026-10-24T00:00:00Z", "2026-10-26T23:59:59Z"), [
      "2026-10-24T00:30:00.000Z",
      "2026-10-25T00:30:00.000Z",
      "2026-10-26T01:30:00.000Z",
    ]);
  });

  test("work({ burst: true }) enqueues the due ticks first, then runs them", async () => {
    const q = fresh();
    const seen: Date[] = [];
    const tick = q.task(
      "tick",
      (_: unknown, job) => void seen.push(job.scheduleAt!),
    );
    await q.schedule("sec", "* * * * * *", tick);
    await sleep(1_200);
    await q.work({ burst: true });
    assert.equal(seen.length, 1, "only the latest missed tick");
    assert.equal(seen[0].getMilliseconds(), 0);
  });

  test("a schedule whose task no worker knows still enqueues; its jobs wait for one", async () => {
    const q = fresh();
    q.task("known", () => {});
    await q.schedule("other", "* * * * * *", "unknown");
    await sleep(1_100);
    await q.work({ burst: true });
    assert.equal(await q.size({ task: "unknown" }), 1);
    await q.unschedule("other");
    await q.clear();
  });

  test("four worker processes: exactly one job per tick for 15 s, a change takes effect at the next tick, unschedule stops it, backfill after downtime", async () => {
    const schema = t.scratch.schema;
    const cron = t.pq.queue("cron");
    await cron.schedule("every-second", "* * * * * *", "tick");
    const start = () =>
      spawnTs("tests/fixtures/schedule_worker.ts", [schema], {
        DATABASE_URL: databaseUrl(),
      });
    let workers: Child[] = Array.from({ length: 4 }, start);
    const stopAll = async () => {
      for (const w of workers) {
        spawnSync("kill", ["-TERM", String(w.process.pid)]);
      }
      await Promise.all(workers.map((w) => w.exited));
    };
    try {
      await Promise.all(workers.map((w) => w.line("READY", 30_000)));
      await sleep(10_000);
      // A change at runtime: every other second from the next tick on.
      const changedAt = new Date();
      await cron.schedule("every-second", "*/2 * * * * *", "tick");
      await sleep(5_000);
      await cron.unschedule("every-second");
      const stoppedAt = new Date();
      await sleep(2_000);
      await stopAll();
      const ticks = (await t.sql`select tick, count(*)::int as n
        from ${t.sql(schema)}.ticks group by tick order by tick`)
        .map((r) => ({ at: r.tick.getTime(), n: r.n }));
      assert.ok(ticks.length >= 12, `${ticks.length} ticks`);
      assert.deepEqual(
        ticks.filter((tk) => tk.n !== 1),
        [],
        "one job per tick",
      );
      const before = ticks.filter((tk) => tk.at < changedAt.getTime() - 1_000);
      for (let i = 1; i < before.length; i++) {
        assert.equal(before[i].at - before[i - 1].at, 1_000, "none missed");
      }
      const afterChange = ticks.filter((tk) =>
        tk.at > changedAt.getTime() + 1_000
      );
      assert.ok(afterChange.length >= 1);
      assert.ok(
        afterChange.every((tk) => (tk.at / 1_000) % 2 === 0),
        "every other second after the change",
      );
      assert.ok(
        ticks.every((tk) => tk.at <= stoppedAt.getTime() + 1_000),
        "none after unschedule",
      );

      // Downtime: no worker for 3 s, then one starts.
      await t.sql`delete from ${t.sql(schema)}.ticks`;
      await cron.schedule("latest", "* * * * * *", "tick", {
        args: { kind: "latest" },
      });
      await cron.schedule("backfill", "* * * * * *", "tick", {
        args: { kind: "backfill" },
        backfill: "10s",
      });
      await sleep(3_500);
      await t.sql`update ${t.sql(schema)}.pq_schedules
        set next_at = next_at - interval '3 seconds'
        where name in ('latest', 'backfill')`; // as if missed for longer
      workers = [start()];
      await workers[0].line("READY", 30_000);
      // The missed ticks come first; on a loaded machine the worker's first
      // turn may take a while after READY.
      const waited = performance.now();
      while (performance.now() - waited < 15_000) {
        const [{ n }] = await t.sql`select count(*)::int as n
          from ${t.sql(schema)}.ticks where kind = 'backfill'`;
        if (n >= 4) break;
        await sleep(100);
      }
      await cron.unschedule("latest");
      await cron.unschedule("backfill");
      await sleep(500);
      await stopAll();
      const [counts] = await t.sql`select
        count(*) filter (where kind = 'latest')::int as latest,
        count(*) filter (where kind = 'backfill')::int as backfill,
        count(distinct (kind, tick))::int as distinct,
        count(*)::int as all
        from ${t.sql(schema)}.ticks`;
      // Missed for about 6.5 s: the backfill enqueues each missed tick, the
      // other only the latest; then both go on once a second.
      assert.equal(counts.distinct, counts.all, "one job per tick");
      assert.ok(
        counts.backfill >= counts.latest + 4,
        `backfill ${counts.backfill}, latest only ${counts.latest}`,
      );
      assert.ok(counts.latest <= 3, `latest only: ${counts.latest} jobs`);
    } finally {
      for (const w of workers) w.process.kill("SIGKILL");
      await Promise.all(workers.map((w) => w.exited));
    }
  });
});
