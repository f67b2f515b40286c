/**
 * Flow control: task concurrency, groups (FIFO per group), rate limits and
 * pause, exact across worker processes and after kill -9, in both task
 * modes.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import type { Queue } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, sleep, type TestPQ } from "./_pq.ts";
import { type Child, spawnTs } from "./_spawn.ts";

/** A recorded run of a job: start and end in ms since 1970. */
interface Run {
  job: number;
  group: string | null;
  started: number;
  ended: number;
  pid: number;
}

/** The most runs at once, with their intervals (an end before a start). */
function mostAtOnce(runs: readonly Run[]): number {
  const events = runs.flatMap((r) => [
    { at: r.started, d: 1 },
    { at: r.ended, d: -1 },
  ]).sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0, most = 0;
  for (const e of events) most = Math.max(most, now += e.d);
  return most;
}

function byGroup(runs: readonly Run[]): Map<string, Run[]> {
  const groups = new Map<string, Run[]>();
  for (const run of runs) {
    const list = groups.get(run.group!) ?? [];
    list.push(run);
    groups.set(run.group!, list);
  }
  return groups;
}

describe("flow control", () => {
  let t: TestPQ;
  let n = 0;
  const fresh = (): Queue => t.pq.queue(`f${n++}`);
  /** The task the worker processes run, registered here to enqueue. */
  let charge: import("../mod.ts").Task<
    { group?: string; ms: number; hang?: string }
  >;

  before(async () => {
    t = await openTestPQ("flow_control", { max: 20 });
    await t.sql`create table ${t.sql(t.scratch.schema)}.runs (
      job_id bigint, grp text, started float8, ended float8, pid int)`;
    charge = t.pq.queue("flow").task("charge", () => {}, {
      groupConcurrency: 1,
    });
  });
  after(async () => {
    await t.close();
  });

  async function runs(): Promise<Run[]> {
    const rows = await t.sql`select job_id::int8::text as job, grp, started,
      ended, pid from ${t.sql(t.scratch.schema)}.runs order by started`;
    return rows.map((r) => ({
      job: Number(r.job),
      group: r.grp,
      started: r.started,
      ended: r.ended,
      pid: r.pid,
    }));
  }

  async function clearRuns(): Promise<void> {
    await t.sql`delete from ${t.sql(t.scratch.schema)}.runs`;
  }

  function startWorkers(count: number, options: object, env = {}): Child[] {
    return Array.from(
      { length: count },
      () =>
        spawnTs("tests/fixtures/limited_worker.ts", [
          t.scratch.schema,
          JSON.stringify(options),
        ], { DATABASE_URL: databaseUrl(), ...env }),
    );
  }

  async function stopWorkers(workers: Child[]): Promise<void> {
    for (const w of workers) {
      spawnSync("kill", ["-TERM", String(w.process.pid)]);
    }
    await Promise.all(workers.map((w) => w.exited));
  }

  async function waitForRuns(count: number, timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while ((await runs()).length < count) {
      if (performance.now() > deadline) {
        assert.fail(`${(await runs()).length} of ${count} runs recorded`);
      }
      await sleep(200);
    }
  }

  test("limits refuse bad values at registration and put, naming the option, writing nothing", async () => {
    const q = fresh();
    const bad: [object, RegExp][] = [
      [
        { concurrency: 0 },
        /'concurrency' must be a whole number of at least 1: received 0/,
      ],
      [{ concurrency: 1.5 }, /'concurrency' must be a whole number/],
      [{ groupConcurrency: -1 }, /'groupConcurrency' must be a whole number/],
      [{ group: "customer" }, /'group' must be a function/],
      [
        { rateLimit: { limit: 0, per: "1s" } },
        /'rateLimit' must be \{ limit, per \}.*'limit' must be a whole number/,
      ],
      [
        { rateLimit: { limit: 5 } },
        /'rateLimit'.*both 'limit' and 'per' are required/,
      ],
      [{ rateLimit: { limit: 5, per: "soon" } }, /'rateLimit'.*'per'/],
      [
        { rateLimit: { limit: 5, per: "1s", burst: 2 } },
        /unknown option 'burst'/,
      ],
    ];
    for (const [options, message] of bad) {
      assert.throws(() => q.task(`t${n++}`, () => {}, options as never), {
        name: "TypeError",
        message,
      });
    }
    const grouped = q.task(
      "grouped",
      () => {},
      // deno-lint-ignore no-explicit-any
      { group: ((args: { c: unknown }) => args.c) as any },
    );
    await assert.rejects(grouped({ c: 42 }), {
      name: "TypeError",
      message:
        /Cannot enqueue task "grouped": The task's 'group' function must give a non-empty string: received 42/,
    });
    const throwing = q.task("throwing", () => {}, {
      group: () => {
        throw new Error("no customer");
      },
    });
    await assert.rejects(throwing({}), /no customer/);
    await assert.rejects(
      grouped.many([{ args: { c: "a" } }, { args: { c: null } }]),
      /item 1.*non-empty string: received null/,
    );
    const plain = q.task("plain", () => {});
    await assert.rejects(plain({}, { group: "g" }), {
      name: "TypeError",
      message:
        /'group' needs a task with a 'group' function or a 'groupConcurrency'/,
    });
    await assert.rejects(grouped({ c: "a" }, { group: 7 as never }), {
      message: /'group' must give a non-empty string: received 7/,
    });
    assert.equal(await q.size(), 0, "nothing written");
  });

  for (const lease of [undefined, "30s"]) {
    const mode = lease ? "lease mode" : "transaction mode";
    test(`${mode}: concurrency holds within one process; a per-call group overrides the function`, async () => {
      const q = fresh();
      let active = 0, most = 0;
      const groups = new Map<string, number>();
      let mostInGroup = 0;
      const task = q.task("t", async (args: { g: string }) => {
        active++;
        groups.set(args.g, (groups.get(args.g) ?? 0) + 1);
        most = Math.max(most, active);
        mostInGroup = Math.max(mostInGroup, groups.get(args.g)!);
        await sleep(5);
        groups.set(args.g, groups.get(args.g)! - 1);
        active--;
      }, { concurrency: 3, group: (args) => args.g, lease });
      await task.many(
        Array.from({ length: 40 }, (_, i) => ({ args: { g: `g${i % 8}` } })),
      );
      // All in one group by the per-call option: one at a time.
      const [one] = await task.many(
        Array.from({ length: 6 }, () => ({ args: { g: "x" }, group: "one" })),
      );
      assert.equal((await q.job(one))?.group, "one");
      const stats = await q.work({ concurrency: 8, burst: true });
      assert.equal(stats.done, 46);
      assert.ok(most <= 3, `${most} at once`);
      assert.ok(most >= 2, `only ${most} at once: the limit was not used`);
      assert.equal(mostInGroup, 1);
      assert.equal(await q.size(), 0);
    });
  }

  test("a job waiting for its retry keeps its group's turn (groupConcurrency 1)", async () => {
    const q = fresh();
    const order: string[] = [];
    let failed = false;
    const task = q.task("t", (args: { name: string }) => {
      order.push(args.name);
      if (args.name === "first" && !failed) {
        failed = true;
        throw new Error("try again");
      }
    }, { group: () => "g", maxRetries: 1, retryIn: "300ms" });
    await task({ name: "first" });
    await task({ name: "second" });
    const stop = new AbortController();
    const working = q.work({ signal: stop.signal, concurrency: 4 });
    const deadline = performance.now() + 10_000;
    while (order.length < 3 && performance.now() < deadline) await sleep(50);
    stop.abort();
    await working;
    assert.deepEqual(order, ["first", "first", "second"]);
  });

  for (const lease of [undefined, "20s"]) {
    const mode = lease ? "lease mode" : "transaction mode";
    const jobs = lease ? 600 : 1_000;
    test(`${mode}: three worker processes, ${jobs} jobs over 50 groups: concurrency 5, one per group at a time, in enqueue order`, async () => {
      await clearRuns();
      const items = Array.from({ length: jobs }, (_, i) => ({
        args: { group: `c${i % 50}`, ms: 1 + Math.floor(Math.random() * 20) },
        group: `c${i % 50}`,
      }));
      const ids = await charge.many(items);
      const workers = startWorkers(3, {
        concurrency: 5,
        group: true,
        groupConcurrency: 1,
        lease,
      });
      try {
        await Promise.all(workers.map((w) => w.line("READY", 30_000)));
        await waitForRuns(jobs, 120_000);
      } finally {
        await stopWorkers(workers);
      }
      const all = await runs();
      assert.equal(all.length, jobs, "each job ran once");
      assert.equal(new Set(all.map((r) => r.job)).size, jobs);
      const most = mostAtOnce(all);
      assert.ok(most <= 5, `${most} ran at once`);
      assert.ok(most >= 3, `only ${most} at once: the limit was not used`);
      const pids = new Set(all.map((r) => r.pid));
      assert.equal(pids.size, 3, "every process ran jobs");
      const position = new Map(ids.map((id, i) => [Number(id), i]));
      for (const [group, list] of byGroup(all)) {
        assert.equal(mostAtOnce(list), 1, `group ${group}: one at a time`);
        const order = list.map((r) => position.get(r.job)!);
        assert.deepEqual(
          order,
          [...order].sort((a, b) => a - b),
          `group ${group} started in enqueue order`,
        );
      }
      console.log(
        `${mode}: ${jobs} jobs, most at once ${most}, over ${
          Math.round(all.at(-1)!.ended - all[0].started)
        } ms`,
      );
    });
  }

  test("rate limit across three processes: no 1-second window holds more than 50 of 300 starts, in about 6 s", async () => {
    await clearRuns();
    await charge.many(
      Array.from({ length: 300 }, () => ({ args: { ms: 1 } })),
    );
    const workers = startWorkers(3, { rateLimit: { limit: 50, per: "1s" } });
    try {
      await Promise.all(workers.map((w) => w.line("READY", 30_000)));
      await waitForRuns(300, 60_000);
    } finally {
      await stopWorkers(workers);
    }
    const all = await runs();
    const starts = all.map((r) => r.started).sort((a, b) => a - b);
    assert.equal(starts.length, 300);
    let most = 0, densest = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (starts[j] <= starts[i] - 1_000) j++;
      if (i - j + 1 > most) [most, densest] = [i - j + 1, j];
    }
    // Should it fail: the densest window's edges and which process each
    // start came from, to tell a late handler from a miscount.
    const edges = [
      ...starts.slice(densest, densest + 2),
      starts[densest + most - 1],
    ]
      .map((at) => {
        const run = all.find((r) => r.started === at)!;
        return `+${(at - starts[0]).toFixed(1)} ms (pid ${run.pid})`;
      });
    assert.ok(most <= 50, `${most} starts in one second: ${edges.join(", ")}`);
    const took = starts.at(-1)! - starts[0];
    console.log(
      `rate limit: most in 1 s ${most}, 300 starts over ${Math.round(took)} ms`,
    );
    // 6 windows of 1.1 s (the window counts a start's slack) after the
    // first: about 5.5 s from first to last start.
    assert.ok(took >= 4_900, `${took} ms: faster than the limit allows`);
    // Generous: the point is that the limit does not stall the run.
    assert.ok(took < 12_000, `${took} ms: much slower than the limit`);
    assert.equal(new Set((await runs()).map((r) => r.pid)).size, 3);
  });

  for (const lease of [undefined, "1s"]) {
    const mode = lease ? "lease mode" : "transaction mode";
    test(`${mode}: kill -9 of a worker holding a group's slot frees it; the group goes on`, async () => {
      await clearRuns();
      // The first job hangs in the process that has HANG=yes.
      await charge.many([
        { args: { group: "k", ms: 1, hang: "yes" }, group: "k" },
        { args: { group: "k", ms: 1 }, group: "k" },
        { args: { group: "k", ms: 1 }, group: "k" },
      ]);
      const [hanging] = startWorkers(1, { groupConcurrency: 1, lease }, {
        HANG: "yes",
      });
      let other: Child[] = [];
      try {
        await hanging.line("READY", 30_000);
        await sleep(1_000);
        assert.equal((await runs()).length, 0, "the group waits for its first");
        other = startWorkers(1, { groupConcurrency: 1, lease });
        await other[0].line("READY", 30_000);
        await sleep(1_000);
        assert.equal((await runs()).length, 0, "still held by the first");
        spawnSync("kill", ["-KILL", String(hanging.process.pid)]);
        await hanging.exited;
        // Transaction mode: the server rolls the batch back at once, and
        // the job runs again; lease mode: the lease (1 s) ends, which used
        // the job's only attempt: it fails. Then the others run.
        await waitForRuns(lease ? 2 : 3, 15_000);
      } finally {
        await stopWorkers(other);
      }
      const all = await runs();
      assert.equal(all.length, lease ? 2 : 3);
      if (lease) {
        const [failed] = await t.pq.queue("flow").failed();
        assert.equal(failed.error?.code, "LEASE_EXPIRED");
        await t.pq.queue("flow").clear();
      }
      assert.equal(mostAtOnce(all), 1);
      assert.ok(all.every((r) => r.pid === other[0].process.pid));
    });
  }

  test("pause and resume across processes: nothing is taken while paused, puts are kept, resume wakes the workers at once", async () => {
    await clearRuns();
    const flow = t.pq.queue("flow");
    const workers = startWorkers(2, { groupConcurrency: 1 });
    try {
      await Promise.all(workers.map((w) => w.line("READY", 30_000)));
      assert.equal(await flow.pause(), true);
      assert.equal(await flow.pause(), false, "paused already");
      assert.equal(await flow.paused(), true);
      await charge.many(
        Array.from({ length: 20 }, () => ({ args: { ms: 1 } })),
      );
      await t.pq.queue("flow").put({ plain: true });
      await sleep(1_500);
      assert.equal((await runs()).length, 0, "no job ran while paused");
      assert.equal(await flow.size({ task: "charge" }), 20, "puts kept");
      assert.equal(
        await flow.get({ block: false }),
        null,
        "get() takes nothing",
      );
      const resumedAt = performance.now();
      assert.equal(await flow.resume(), true);
      await waitForRuns(20, 10_000);
      const wokeIn = performance.now() - resumedAt;
      assert.ok(wokeIn < 2_000, `${wokeIn} ms after resume`);
      assert.equal(await flow.paused(), false);
      assert.deepEqual((await flow.get({ block: false }))?.data, {
        plain: true,
      });
    } finally {
      await stopWorkers(workers);
    }
  });
});
