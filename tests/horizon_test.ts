/**
 * A pinned MVCC horizon: while an old transaction keeps every deleted row's
 * index entry alive, takes start past the dead entries (src/take_marks.ts),
 * and still take every job once, including jobs that become ready behind
 * where the takes already are.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";
import { createPQ, type Queue } from "../mod.ts";
import { Compactor, worthCompacting } from "../src/compact.ts";
import { reindexBloated } from "../src/reindex.ts";
import { readVacuumCounts } from "../src/vacuum_counts.ts";
import { type TableNames, tableNames } from "../src/schema.ts";

/** Dead index entries in front of the live jobs. */
const DEAD = 20_000;

describe("a pinned horizon", () => {
  let t: TestPQ;
  let holder: postgres.Sql;
  let pin: postgres.ReservedSql;

  before(async () => {
    t = await openTestPQ("horizon", { max: 12 });
    holder = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    // An idle transaction that took an xid: no row deleted after it began
    // may be removed, nor its index entry marked dead, until it ends.
    pin = await holder.reserve();
    await pin`begin`;
    await pin`select txid_current()`;
  });
  after(async () => {
    await pin`rollback`;
    pin.release();
    await holder.end();
    await t.close();
  });

  /** A queue whose index holds `DEAD` entries of deleted jobs first. */
  async function behindDeadEntries(name: string): Promise<Queue<number>> {
    const q = t.pq.queue<number>(name);
    await q.putMany(Array.from({ length: DEAD }, (_, i) => ({ data: -i })));
    assert.equal(await q.clear(), DEAD);
    return q;
  }

  /** The median time of `n` non-blocking gets, checking their order. */
  async function medianGet(q: Queue<number>, n: number, first: number) {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      const job = await q.get({ block: false });
      times.push(since(start));
      assert.equal(job?.data, first + i, "jobs come out in order");
    }
    times.sort((a, b) => a - b);
    return times[n >> 1];
  }

  /**
   * Asserts that gets of `pinned`, whose indexes hold dead entries, cost
   * about what they cost on a clean queue: the first takes walk the dead
   * entries, find the walk slow, and start past the jobs they took once
   * those marks settle (250 ms); then 200 gets of each are timed.
   */
  async function assertGetsCostAsOnAClean(
    pinned: Queue<number>,
    behind: string,
  ) {
    const clean = t.pq.queue<number>(`${pinned.name}-clean`);
    // Enough for the warm-up and the 200 timed gets on a fast machine,
    // where 400 ms of gets took all of 600.
    const jobs = Array.from({ length: 3_000 }, (_, i) => ({ data: i }));
    await pinned.putMany(jobs);
    await clean.putMany(jobs);
    let next = 0;
    const warm = performance.now();
    while (since(warm) < 400) {
      assert.equal((await pinned.get({ block: false }))?.data, next++);
    }
    const cleanMs = await medianGet(clean, 200, 0);
    const pinnedMs = await medianGet(pinned, 200, next);
    // Walking the dead entries made each get 15 to 30 times slower here.
    assert.ok(
      pinnedMs < 3 * cleanMs,
      `median get ${pinnedMs.toFixed(2)} ms behind ${behind}, ${
        cleanMs.toFixed(2)
      } ms on a clean queue`,
    );
  }

  test(`a get behind ${DEAD} dead entries costs about what it costs on a clean queue`, async () => {
    await assertGetsCostAsOnAClean(
      await behindDeadEntries("pinned"),
      "dead entries",
    );
  });

  test(`a get behind ${DEAD} dead scheduled and leased entries costs about what it costs on a clean queue`, async () => {
    // Every take looks for the queue's next due time: the earliest
    // scheduled job, the earliest lease to end. Jobs promoted or claimed
    // with a lease since the pin leave their entries in those indexes.
    const q = t.pq.queue<number>("due");
    const table = tableNames(t.scratch.schema, "queue").qualified;
    await q.putMany(
      Array.from({ length: DEAD }, (_, i) => ({ data: -i, scheduleAt: "1h" })),
    );
    // Half of them as a lease claim leaves them, running.
    await t.sql.unsafe(
      `update ${table} set state = 'running',
        lease_until = now() + interval '1 hour'
      where queue = 'due' and id % 2 = 0`,
    );
    // Then gone, as promoted and finished jobs go (clear() leaves running
    // jobs to their workers).
    const gone = await t.sql.unsafe(`delete from ${table} where queue = 'due'`);
    assert.equal(gone.count, DEAD);
    await assertGetsCostAsOnAClean(q, "dead scheduled and leased entries");
  });

  test("a scheduled job that comes due while takes skip the due check is taken within about a second", async () => {
    const q = await behindDeadEntries("soon");
    let next = 0;
    const start = performance.now();
    while (since(start) < 400) { // the marks are in use
      await q.put(next);
      assert.equal((await q.get({ block: false }))?.data, next++);
    }
    await q.put(-1, { scheduleAt: "300ms" });
    const waited = performance.now();
    const job = await q.get({ timeout: "10s" });
    assert.equal(job?.data, -1);
    assert.ok(
      since(waited) < 2_000,
      `taken ${
        since(waited).toFixed(0)
      } ms after the get began, 300 ms after it came due`,
    );
  });

  test("a job committed behind the takes' marks is still taken, within about a second", async () => {
    const q = await behindDeadEntries("straggler");
    let next = 0;
    const takeAll = async (ms: number) => {
      const start = performance.now();
      while (since(start) < ms) {
        await q.put(next);
        assert.equal((await q.get({ block: false }))?.data, next++);
      }
    };
    await takeAll(400); // the marks are in use
    // Its id comes before every job put while its transaction is open, and
    // its row shows only at commit, once the takes' marks are past it.
    let committed = 0;
    await t.sql.begin(async (tx) => {
      await q.with(tx).put(-1);
      await takeAll(600);
      committed = performance.now();
    });
    const waited = performance.now();
    const job = await q.get({ timeout: "10s" });
    assert.equal(job?.data, -1);
    assert.ok(
      since(waited) < 3_000,
      `taken ${since(waited).toFixed(0)} ms after the get began (${
        since(committed).toFixed(0)
      } ms after its commit)`,
    );
    assert.equal(await q.size(), 0);
  });

  for (const mode of ["transaction", "lease"] as const) {
    test(`a worker (${mode} mode) fed by concurrent producers does every job once`, async () => {
      const q = t.pq.queue(`worker-${mode}`);
      const seen = new Map<number, number>();
      const record = q.task("record", (n: number) => {
        seen.set(n, (seen.get(n) ?? 0) + 1);
      }, mode === "lease" ? { lease: "30s" } : {});
      // Dead entries in front, in the index of task jobs this time.
      await record.many(Array.from({ length: DEAD }, (_, i) => ({ args: -i })));
      assert.equal(await q.clear(), DEAD);
      const stop = new AbortController();
      const worker = q.work({
        concurrency: 8,
        signal: stop.signal,
        onEvent: () => {},
      });
      // Four producers: ids are handed out in insert order, but commits
      // land in any order, some behind jobs already taken.
      const perProducer = 500;
      await Promise.all(
        Array.from({ length: 4 }, async (_, p) => {
          for (let i = 0; i < perProducer; i++) {
            await record(p * perProducer + i);
          }
        }),
      );
      const all = 4 * perProducer;
      const start = performance.now();
      while (seen.size < all && since(start) < 20_000) await sleep(20);
      stop.abort();
      const stats = await worker;
      assert.equal(seen.size, all, "every job ran");
      assert.ok([...seen.values()].every((runs) => runs === 1), "once each");
      assert.equal(stats.done, all);
      assert.equal(await q.size(), 0);
    });
  }
});

describe("after a pinned horizon", () => {
  let t: TestPQ;
  let names: TableNames;
  const sizes = async () =>
    Object.fromEntries(
      (await t.sql`select c.relname, pg_relation_size(i.indexrelid)::int8
          as bytes from pg_index as i
          join pg_class as c on c.oid = i.indexrelid
          where i.indrelid = ${names.qualified}::regclass and i.indisvalid`)
        .map((row) => [row.relname as string, Number(row.bytes)]),
    );

  const tableBytes = async () => {
    const [{ bytes }] = await t.sql`select
      pg_relation_size(${names.qualified}::regclass)::float8 as bytes`;
    return bytes as number;
  };

  /** Pins the horizon: an idle transaction that took an xid, until `end()`. */
  const pinHorizon = async () => {
    const holder = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const pin = await holder.reserve();
    await pin`begin`;
    await pin`select txid_current()`;
    return {
      async end() {
        await pin`rollback`;
        pin.release();
        await holder.end();
      },
    };
  };

  const invalidIndexes = async () => {
    const [{ invalid }] = await t.sql`select count(*)::int as invalid
      from pg_index where indrelid = ${names.qualified}::regclass
        and not indisvalid`;
    return invalid as number;
  };

  /**
   * Puts `n` jobs on queue `name` and clears them, on a connection of its
   * own that then closes. The rebuild's bar counts the dead rows a vacuum
   * left as the statistics count them, and a connection reports its
   * deletes only when it next runs a statement a second later, or closes:
   * deletes reported after a vacuum would count as rows it left.
   */
  const putAndClear = async (name: string, n: number) => {
    const own = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const pq = createPQ(own, { schema: t.scratch.schema, vacuum: false });
    try {
      const q = pq.queue<number>(name);
      await q.putMany(Array.from({ length: n }, (_, i) => ({ data: i })));
      assert.equal(await q.clear(), n);
    } finally {
      await pq.close();
      await own.end();
    }
  };

  before(async () => {
    // The tests run each turn themselves: pq's own vacuum, which a
    // clear() of 10,000 jobs starts, would rebuild in the background.
    t = await openTestPQ("reindex", { vacuum: false });
    names = tableNames(t.scratch.schema, "queue");
  });
  after(async () => {
    await t.close();
  });

  test("the vacuum's reindex brings bloated indexes back to their clean size, and only once the pin ends", async () => {
    await putAndClear("bloat", 100);
    await t.sql.unsafe(`vacuum ${names.qualified}`);
    const clean = await sizes();

    const pin = await pinHorizon();
    await putAndClear("bloat", 60_000);
    await t.sql.unsafe(`vacuum ${names.qualified}`);
    const pinned = await sizes();
    assert.deepEqual(
      await reindexBloated(t.sql, names),
      { rebuilt: [], dropped: [] },
      "nothing is rebuilt while the dead rows must stay",
    );
    // Not even begun: a rebuild begun would have waited for the pin and
    // left its copy behind, invalid, taking every put's entries meanwhile.
    assert.equal(await invalidIndexes(), 0, "no rebuild was begun");
    await pin.end();

    await t.sql.unsafe(`vacuum ${names.qualified}`);
    const turn = await reindexBloated(t.sql, names);
    assert.deepEqual(turn.dropped, [], "no copy was left to drop");
    const rebuilt = await sizes();
    const bloated = Object.keys(pinned).filter((index) =>
      pinned[index] > 1 << 20
    );
    assert.ok(bloated.length >= 2, `bloated: ${JSON.stringify(pinned)}`);
    assert.equal(turn.rebuilt.length, bloated.length);
    for (const index of Object.keys(clean)) {
      assert.ok(
        rebuilt[index] <= 2 * Math.max(clean[index], 8192),
        `${index}: ${clean[index]} bytes clean, ${pinned[index]} pinned, ${
          rebuilt[index]
        } rebuilt`,
      );
    }
    const q = t.pq.queue<number>("bloat");
    await q.put(1); // the rebuilt indexes serve puts and takes
    assert.equal((await q.get({ block: false }))?.data, 1);
  });

  test("a rebuild that waits for a writer gives up, and the next turn drops its invalid copy", async () => {
    await putAndClear("leftover", 30_000);
    await t.sql.unsafe(`vacuum ${names.qualified}`);
    // A transaction that may write the table: a concurrent rebuild waits
    // for it before building its copy (this one pins no rows).
    const writer = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const lock = await writer.reserve();
    await lock`begin`;
    try {
      await lock.unsafe(`lock table ${names.qualified} in row exclusive mode`);
      const started = performance.now();
      const first = await reindexBloated(t.sql, names);
      assert.ok(since(started) < 10_000, "the wait is bounded");
      assert.deepEqual(first.rebuilt, []);
      assert.equal(
        await invalidIndexes(),
        1,
        "the copy it began is left, invalid",
      );
    } finally {
      await lock`commit`;
      lock.release();
      await writer.end();
    }

    const second = await reindexBloated(t.sql, names);
    assert.equal(second.dropped.length, 1);
    assert.match(second.dropped[0], /_ccnew\d*$/);
    assert.ok(second.rebuilt.length >= 1);
    assert.equal(await invalidIndexes(), 0);
  });

  test("a table a pin left bloated and nearly empty is rewritten to its clean size once the pin ends, not before", async () => {
    await putAndClear("rewrite", 100);
    await t.sql.unsafe(`vacuum ${names.qualified}`);
    const clean = await tableBytes();

    const pin = await pinHorizon();
    const compactor = new Compactor();
    try {
      await putAndClear("rewrite", 60_000);
      // A job put last sits on the table's last page: VACUUM can cut off
      // nothing behind it (in a busy queue, the jobs just put do that).
      await t.pq.queue<number>("rewrite").put(-1);
      await t.sql.unsafe(`vacuum ${names.qualified}`);
      const pinned = await readVacuumCounts(t.sql, names);
      assert.ok(pinned!.bytes > 1 << 20, `${pinned!.bytes} bytes pinned`);
      assert.equal(
        await compactor.compact(t.sql, names, pinned!),
        false,
        "no rewrite while the dead rows must stay",
      );
    } finally {
      await pin.end();
    }
    await t.sql.unsafe(`vacuum ${names.qualified}`);
    const after = await readVacuumCounts(t.sql, names);
    assert.ok(after!.bytes > 1 << 20, `${after!.bytes} bytes after VACUUM`);
    assert.equal(await compactor.compact(t.sql, names, after!), true);
    const rewritten = await tableBytes();
    assert.ok(
      rewritten <= 2 * Math.max(clean, 8192),
      `${clean} bytes clean, ${
        after!.bytes
      } after the pin, ${rewritten} rewritten`,
    );
    for (const [index, bytes] of Object.entries(await sizes())) {
      assert.ok(bytes <= 64 * 1024, `${index}: ${bytes} bytes rewritten`);
    }
    const q = t.pq.queue<number>("rewrite");
    assert.equal((await q.get({ block: false }))?.data, -1, "kept its job");
    await q.put(1); // the rewritten table serves puts and takes
    assert.equal((await q.get({ block: false }))?.data, 1);
  });

  test("a rewrite waits at most 100 ms for its lock, puts go on, and the next try waits", async () => {
    const writer = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    const lock = await writer.reserve();
    const compactor = new Compactor();
    // What a vacuum leaves after a pin: a big table with few rows.
    const bloated = { rows: 10, pinned: 0, bytes: 8 << 20, leftovers: false };
    await lock`begin`;
    await lock.unsafe(`lock table ${names.qualified} in row exclusive mode`);
    // Should the rewrite wait on regardless, the writer lets go after 5 s
    // and the test fails on the time instead of hanging.
    const release = sleep(5_000).then(() => lock`commit`);
    try {
      const q = t.pq.queue<number>("locked");
      const started = performance.now();
      const [rewritten, id] = await Promise.all([
        compactor.compact(t.sql, names, bloated),
        sleep(20).then(() => q.put(1)), // queued behind the rewrite's wait
      ]);
      const took = since(started);
      assert.equal(rewritten, false);
      assert.match(id, /^\d+$/);
      assert.ok(took < 1_000, `gave up after ${took.toFixed(0)} ms`);
      const again = performance.now();
      assert.equal(await compactor.compact(t.sql, names, bloated), false);
      assert.ok(since(again) < 90, "the next try waits: no lock wait now");
      assert.equal((await q.get({ block: false }))?.data, 1);
    } finally {
      await release;
      lock.release();
      await writer.end();
    }
  });

  test("a rewrite is for small tables with few rows, none pinned, and no invalid index copy", () => {
    const bloated = { rows: 10, pinned: 0, bytes: 8 << 20, leftovers: false };
    assert.equal(worthCompacting(bloated), true);
    assert.equal(
      worthCompacting({ ...bloated, rows: 10_001, bytes: 30 << 20 }),
      false,
      "over 10,000 rows every put and take would wait for the copy",
    );
    assert.equal(
      worthCompacting({ ...bloated, bytes: 64 << 20 }),
      false,
      "over 32 MiB every put and take would wait for the read",
    );
    assert.equal(
      worthCompacting({ ...bloated, bytes: 1 << 20 }),
      false,
      "1 MiB is never worth it",
    );
    assert.equal(
      worthCompacting({ ...bloated, pinned: 5_000 }),
      false,
      "pinned rows count as rows",
    );
    assert.equal(
      worthCompacting({ ...bloated, leftovers: true }),
      false,
      "a rewrite would make a failed rebuild's copy a valid second index",
    );
  });
});
