/**
 * Bad input: every public function given wrong types, empty and huge
 * values, NUL characters and lone surrogates, SQL-looking names, invalid
 * dates and durations. Each either throws a clear error (its class, and a
 * message that names the problem and the value) or works correctly; nothing
 * is written half, and the table is intact afterwards. Also a property test:
 * generated values survive a put/get round trip through a real queue.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import postgres from "postgres";
import { createPQ, type Queue } from "../mod.ts";
import { TABLE_VERSION } from "../src/schema.ts";
import { databaseUrl } from "./_db.ts";
import { openTestPQ, since, sleep, type TestPQ } from "./_pq.ts";

type ErrorClass = new (...args: never[]) => Error;

/** Asserts that `fn` throws an instance of `kind` whose message matches. */
function throwsClear(fn: () => unknown, kind: ErrorClass, message: RegExp) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof kind, `expected ${kind.name}: got ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

/** Asserts that `fn` rejects with an instance of `kind` whose message matches. */
async function rejectsClear(
  fn: () => Promise<unknown>,
  kind: ErrorClass,
  message: RegExp,
) {
  await assert.rejects(fn, (error: unknown) => {
    assert.ok(error instanceof kind, `expected ${kind.name}: got ${error}`);
    assert.match(error.message, message);
    return true;
  });
}

/** Quotes an identifier for the test's own SQL (`sql(name)` splits at dots). */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

const SQLISH = `"; drop table queue; --`;
const LONE = "\ud800";
const HUGE_NAME = "x".repeat(10_000);

/** Times that are not times, with the error class and a message fragment. */
const BAD_TIMES: [unknown, ErrorClass, string][] = [
  ["5x", TypeError, 'received "5x"'],
  ["-5m", TypeError, 'received "-5m"'],
  ["", TypeError, 'received ""'],
  ["5 m", TypeError, 'received "5 m"'],
  [NaN, TypeError, "received NaN"],
  [{}, TypeError, "received an object"],
  [null, TypeError, "received null"],
  [true, TypeError, "received true"],
  [new Date(NaN), TypeError, "received Invalid Date"],
  [-5, RangeError, "received -5"],
  [Infinity, RangeError, "received Infinity"],
  [1e16, RangeError, "received 10000000000000000"],
  [new Date(8.64e15), RangeError, "from year 1 to 9999: received"],
  [new Date(-8.64e15), RangeError, "from year 1 to 9999: received"],
  [new Date("0000-12-31T23:59:59.999Z"), RangeError, "from year 1 to 9999"],
  [
    "100000000d",
    RangeError,
    'ends before the year 10000: received "100000000d"',
  ],
];

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("bad input", () => {
  let t: TestPQ;
  let n = 0;
  /** A fresh queue for each test. */
  const fresh = <T = unknown>(suffix = ""): Queue<T> =>
    t.pq.queue<T>(`bad${n++}${suffix}`);
  /** Rows in the test's job table. */
  const rows = async () =>
    Number(
      (await t.sql`select count(*)::int as n from ${
        t.sql(t.scratch.schema)
      }.queue`)[0].n,
    );
  /** Runs `fn` and asserts that it wrote nothing. */
  const writesNothing = async (fn: () => Promise<void> | void) => {
    const before = await rows();
    await fn();
    assert.equal(await rows(), before, "nothing was written");
  };

  before(async () => {
    t = await openTestPQ("bad_input");
  });
  after(async () => {
    await t.close();
  });

  test("createPQ() refuses what is not a client, and bad options, naming them", () => {
    for (const client of [null, undefined, "postgres://x", {}, () => {}]) {
      throwsClear(
        () => createPQ(client as never),
        TypeError,
        /^Cannot create PQ: expected a postgres client from postgres\(url\): received /,
      );
    }
    const bad: [unknown, ErrorClass, RegExp][] = [
      ["x", TypeError, /options must be an object: received "x"/],
      [[], TypeError, /options must be an object: received an array/],
      [{ tabel: "x" }, TypeError, /unknown option 'tabel' \(known: table,/],
      [
        { table: "" },
        TypeError,
        /'table' must be a non-empty string: received ""/,
      ],
      [
        { table: 5 },
        TypeError,
        /'table' must be a non-empty string: received 5/,
      ],
      [
        { table: "a\0b" },
        TypeError,
        /'table' must not contain a NUL character: received "a\\u0000b"/,
      ],
      [
        { table: `a${LONE}` },
        TypeError,
        /'table' must not contain a lone surrogate/,
      ],
      [
        { table: "t".repeat(64) },
        RangeError,
        /'table' must be at most 63 bytes in UTF-8, or PostgreSQL would truncate it: received 64 bytes/,
      ],
      [
        { table: "é".repeat(32) },
        RangeError,
        /'table' must be at most 63 bytes.*received 64 bytes/,
      ],
      [{ schema: "" }, TypeError, /'schema' must be a non-empty string/],
      [
        { schema: "s\0" },
        TypeError,
        /'schema' must not contain a NUL character/,
      ],
      [
        { schema: LONE },
        TypeError,
        /'schema' must not contain a lone surrogate/,
      ],
      [
        { schema: HUGE_NAME },
        RangeError,
        /'schema' must be at most 63 bytes in UTF-8.*received 10000 bytes/,
      ],
      [
        { timeout: "5x" },
        TypeError,
        /'timeout' must be a number of milliseconds or a duration like "5m": received "5x"/,
      ],
      [
        { timeout: -1 },
        RangeError,
        /'timeout' must be between 0 and .*: received -1/,
      ],
      [
        { pollInterval: 5 },
        RangeError,
        /'pollInterval' must be at least 10 milliseconds: received 5/,
      ],
      [{ pollInterval: "soon" }, TypeError, /'pollInterval' .*received "soon"/],
      [
        { listen: "yes" },
        TypeError,
        /'listen' must be a boolean: received "yes"/,
      ],
      [
        { encode: "json" },
        TypeError,
        /'encode' must be a function: received "json"/,
      ],
      [{ decode: 1 }, TypeError, /'decode' must be a function: received 1/],
      [
        { codecs: { csv: {} } },
        TypeError,
        /'codecs.csv' must be an object with encode and decode functions: received an object/,
      ],
    ];
    for (const [options, kind, message] of bad) {
      throwsClear(
        () => createPQ(t.sql, options as never),
        kind,
        new RegExp(`^Cannot create PQ: ${message.source}`),
      );
    }
  });

  test("pq.queue() refuses bad names: empty, not a string, NUL, lone surrogate, 10,000 characters", () => {
    const bad: [unknown, ErrorClass, RegExp][] = [
      ["", TypeError, /^A queue name must be a non-empty string: received ""$/],
      [5, TypeError, /^A queue name must be a non-empty string: received 5$/],
      [null, TypeError, /received null$/],
      [undefined, TypeError, /received undefined$/],
      [{}, TypeError, /received an object$/],
      [
        "a\0b",
        TypeError,
        /^A queue name must not contain a NUL character: received "a\\u0000b"$/,
      ],
      [
        `a${LONE}b`,
        TypeError,
        /^A queue name must not contain a lone surrogate: received "a\\ud800b"$/,
      ],
      [
        HUGE_NAME,
        RangeError,
        /^A queue name must be at most 1024 bytes in UTF-8: received 10000 bytes \("x{59}…"\)$/,
      ],
      ["é".repeat(513), RangeError, /received 1026 bytes/],
      [
        "/pickle",
        TypeError,
        /^A queue name must be a non-empty string: received ""$/,
      ],
      [
        "apples/csv",
        TypeError,
        /^Unknown codec "csv" for queue "apples\/csv": known codecs are "json", "pickle"/,
      ],
    ];
    for (const [name, kind, message] of bad) {
      throwsClear(() => t.pq.queue(name as string), kind, message);
    }
    throwsClear(
      () => t.pq.queue("a", { codec: "nope" }),
      TypeError,
      /^Unknown codec "nope" for queue "a"/,
    );
    throwsClear(
      () => t.pq.queue("a", { codex: "json" } as never),
      TypeError,
      /^Cannot open queue: unknown option 'codex' \(known: codec, schema\)$/,
    );
  });

  test("a task name is checked like a queue name", () => {
    const q = fresh();
    const bad: [unknown, ErrorClass, RegExp][] = [
      ["", TypeError, /^A task name must be a non-empty string: received ""$/],
      [7, TypeError, /^A task name must be a non-empty string: received 7$/],
      ["t\0", TypeError, /^A task name must not contain a NUL character/],
      [LONE, TypeError, /^A task name must not contain a lone surrogate/],
      [
        HUGE_NAME,
        RangeError,
        /^A task name must be at most 1024 bytes in UTF-8: received 10000 bytes/,
      ],
    ];
    for (const [name, kind, message] of bad) {
      throwsClear(() => q.task(name as string, () => {}), kind, message);
    }
  });

  test("a queue name of exactly 1,024 bytes works, blocking get included", async () => {
    const q = t.pq.queue<string>("é".repeat(512));
    const got = q.get({ timeout: "5s" });
    await sleep(200);
    await q.put("long");
    assert.equal((await got)?.data, "long");
    assert.equal(q.name.length, 512);
  });

  test("SQL-looking queue and task names are literal names", async () => {
    const names = [
      SQLISH,
      `'; delete from queue; --`,
      `' or '1'='1`,
      "$1",
      "%",
      "_",
      "\\",
      `"`,
      "queue",
      "a\nb\tc",
      "   ",
      "🍎 \u202e",
    ];
    const other = fresh();
    await other.put("bystander");
    for (const name of names) {
      const q = t.pq.queue<string>(name, { codec: "json" });
      await q.put(`data of ${name}`);
      assert.equal(await q.size(), 1, `size of ${JSON.stringify(name)}`);
      const job = await q.get({ block: false });
      assert.equal(job?.data, `data of ${name}`);
      assert.equal(job?.queue, name);
      const task = t.pq.queue(`${name} tasks`, { codec: "json" }).task(
        name,
        async (args: string, job) => {
          await job.tx`select ${args}::text`;
        },
      );
      await task("x");
      const stats = await t.pq.queue(`${name} tasks`, { codec: "json" })
        .work({ burst: true });
      assert.deepEqual(stats, { done: 1, retried: 0, failed: 0 });
    }
    // A blocking get on an SQL-looking name is woken by NOTIFY.
    const q = t.pq.queue<string>(SQLISH);
    const start = performance.now();
    const got = q.get({ timeout: "10s" });
    await sleep(200);
    const producer = postgres(databaseUrl(), { max: 1, onnotice: () => {} });
    try {
      await createPQ(producer, { schema: t.scratch.schema }).queue(SQLISH)
        .put("woken");
    } finally {
      await producer.end();
    }
    assert.equal((await got)?.data, "woken");
    assert.ok(since(start) < 3_000);
    assert.equal((await other.get({ block: false }))?.data, "bystander");
    assert.equal(await t.pq.queue(SQLISH).clear(), 0);
  });

  test("SQL-looking and odd schema and table names are literal identifiers", async () => {
    const cases: [string, string][] = [
      [SQLISH, SQLISH],
      [`pq_bad_'; drop schema public; --`, `x'); drop table queue; --`],
      ["pq_bad.dotted", "a.b"],
      ["pq_bad_Mixed Case", "Queue"],
      ["pq_bad_" + "s".repeat(56), "t".repeat(63)],
      ["pq_bad_🍎", "$1"],
    ];
    const tablesBefore = await t.sql`select count(*)::int as n
      from pg_tables where schemaname = 'public'`;
    for (const [schema, table] of cases) {
      const pq = createPQ(t.sql, { schema, table, pollInterval: "1m" });
      try {
        await pq.create();
        await pq.create(); // idempotent
        const [found] = await t.sql`select count(*)::int as n from pg_tables
          where schemaname = ${schema} and tablename = ${table}`;
        assert.equal(found.n, 1, `the table ${schema}.${table} exists`);
        const q = pq.queue<string>("q");
        const got = q.get({ timeout: "10s" });
        await sleep(150);
        const id = await q.put("in an odd table");
        const job = await got;
        assert.equal(job?.id, id, "blocking get woken by NOTIFY");
        const eat = q.task("eat", () => {}, { maxRetries: 1 });
        await eat(1);
        assert.deepEqual(await q.work({ burst: true }), {
          done: 1,
          retried: 0,
          failed: 0,
        });
        assert.equal(await q.size(), 0);
      } finally {
        await pq.close();
        await t.sql.unsafe(`drop schema if exists ${ident(schema)} cascade`);
      }
    }
    const tablesAfter = await t.sql`select count(*)::int as n
      from pg_tables where schemaname = 'public'`;
    assert.equal(tablesAfter[0].n, tablesBefore[0].n, "public is untouched");
  });

  test("put() refuses data it cannot store, naming the value; nothing is written", async () => {
    const q = fresh();
    const cycle: Record<string, unknown> = {};
    cycle.self = cycle;
    const bad: [unknown, RegExp][] = [
      [undefined, /^Cannot encode job data as JSON: undefined at data/],
      [{ big: 1n }, /^Cannot encode job data as JSON: a BigInt at data\.big/],
      [
        cycle,
        /^Cannot encode job data as JSON: a circular reference at data\.self/,
      ],
      [{ f: () => {} }, /a function at data\.f/],
      [[Symbol("s")], /a symbol at data\[0\]/],
      [{ n: NaN }, /NaN at data\.n/],
      [{ m: new Map() }, /a Map at data\.m/],
      [{ when: new Date(NaN) }, /an invalid Date at data\.when/],
      [
        { text: `a${LONE}` },
        /^Cannot store job data: it contains a lone surrogate \(U\+D800\) in a string$/,
      ],
      [{ [`k${LONE}`]: 1 }, /lone surrogate \(U\+D800\)/],
    ];
    await writesNothing(async () => {
      for (const [data, message] of bad) {
        await rejectsClear(() => q.put(data), TypeError, message);
      }
      const pickled = fresh("/pickle");
      await rejectsClear(
        () => pickled.put({ text: "\udfff" }),
        TypeError,
        /lone surrogate \(U\+DFFF\)/,
      );
    });
  });

  test("put() refuses bad times and options, naming the option and the value; nothing is written", async () => {
    const q = fresh();
    await writesNothing(async () => {
      for (const option of ["scheduleAt", "expectedAt"]) {
        for (const [value, kind, fragment] of BAD_TIMES) {
          await rejectsClear(
            () => q.put(1, { [option]: value }),
            kind,
            new RegExp(
              `^Cannot put job: '${option}' must be .*${escape(fragment)}`,
            ),
          );
        }
      }
      await rejectsClear(
        () => q.put(1, { schedule_at: "5m" } as never),
        TypeError,
        /^Cannot put job: unknown option 'schedule_at' \(known: scheduleAt, expectedAt, key, onDuplicate, throttle\)$/,
      );
      await rejectsClear(
        () => q.put(1, "5m" as never),
        TypeError,
        /^Cannot put job: options must be an object: received "5m"$/,
      );
    });
  });

  test("dates at the edges PostgreSQL takes work exactly", async () => {
    const q = fresh<number>();
    const first = new Date("0001-01-01T00:00:00.000Z");
    const last = new Date("9999-12-31T23:59:59.999Z");
    await q.put(1, { expectedAt: first });
    await q.put(2, { scheduleAt: last, expectedAt: last });
    await q.put(3, { scheduleAt: "2900000d" }); // in the year 9966 or so
    // Read as text: the driver reads the year 1 as 2001.
    const rows = await t.sql`select schedule_at::text, expected_at::text
      from ${t.sql(t.scratch.schema)}.queue where queue = ${q.name}
      order by id`;
    assert.equal(rows[0].expected_at, "0001-01-01 00:00:00+00");
    assert.equal(rows[1].schedule_at, "9999-12-31 23:59:59.999+00");
    assert.match(rows[2].schedule_at, /^99\d\d-/);
    assert.equal((await q.get({ block: false }))?.data, 1);
    assert.equal(await q.get({ block: false }), null);
    await q.clear();
  });

  test("times read back exactly whatever the session's time zone, old dates included", async () => {
    // Before 1972 Africa/Monrovia was 44 min 30 s behind UTC: PostgreSQL
    // writes such times with an offset in seconds.
    const zoned = postgres(databaseUrl(), {
      max: 2,
      onnotice: () => {},
      connection: { TimeZone: "Africa/Monrovia" },
    });
    const pq = createPQ(zoned, { schema: t.scratch.schema });
    try {
      const q = pq.queue(`zoned${n++}`);
      const times = [
        new Date(0),
        new Date("0050-06-15T12:00:00.000Z"),
        new Date("1850-01-01T00:00:00.001Z"),
      ];
      for (const at of times) {
        await q.put("x", { scheduleAt: at, expectedAt: at });
        const job = await q.get({ block: false });
        assert.equal(job?.expectedAt?.getTime(), at.getTime());
        assert.equal(job?.scheduleAt?.getTime(), at.getTime());
      }
      // A failing task job is written back with its times: it must be
      // retried and then stored as failed, not fail its batch over and over.
      let runs = 0;
      const eat = q.task("eat", () => {
        throw new Error(`run ${++runs}`);
      }, { maxRetries: 1, retryIn: 0 });
      const id = await eat(1, { expectedAt: new Date(0) });
      const stats = await q.work({
        burst: true,
        signal: AbortSignal.timeout(10_000),
        onEvent: () => {},
      });
      assert.deepEqual(stats, { done: 0, retried: 1, failed: 1 });
      assert.equal(runs, 2);
      const [failed] = await q.failed();
      assert.equal(failed.id, id);
      assert.equal(failed.expectedAt?.getTime(), 0);
      assert.ok(Math.abs(failed.failedAt.getTime() - Date.now()) < 60_000);
      await q.clear();
    } finally {
      await pq.close();
      await zoned.end();
    }
  });

  test("putMany() writes all items or none", async () => {
    const q = fresh();
    await writesNothing(async () => {
      await rejectsClear(
        () => q.putMany({ data: 1 } as never),
        TypeError,
        /^Cannot put jobs: expected an array of \{ data \} items: received an object$/,
      );
      await rejectsClear(
        () => q.putMany([{ data: 1 }, { value: 2 }] as never),
        TypeError,
        /^Cannot put jobs \(item 1\): expected an object with 'data': received an object$/,
      );
      await rejectsClear(
        () => q.putMany([{ data: 1 }, null] as never),
        TypeError,
        /^Cannot put jobs \(item 1\): expected an object with 'data': received null$/,
      );
      await rejectsClear(
        () => q.putMany([{ data: 1 }, { data: 2n }]),
        TypeError,
        /a BigInt at data/,
      );
      await rejectsClear(
        () => q.putMany([{ data: 1 }, { data: 2, scheduleAt: "5x" }]),
        TypeError,
        /^Cannot put jobs \(item 1\): 'scheduleAt' must be .*received "5x"$/,
      );
      await rejectsClear(
        () => q.putMany([{ data: 1 }], { expectedAt: -1 }),
        RangeError,
        /^Cannot put jobs: 'expectedAt' must be .*received -1$/,
      );
      assert.deepEqual(await q.putMany([]), []);
    });
    const ids = await q.putMany(
      Array.from({ length: 5_000 }, (_, i) => ({ data: i })),
    );
    assert.equal(ids.length, 5_000);
    assert.equal(await q.size(), 5_000);
    assert.equal(await q.clear(), 5_000);
  });

  test("a 10 MB payload works, as JSON and as pickled bytes", async () => {
    const big = "0123456789".repeat(1024 * 1024);
    const q = fresh<{ big: string }>();
    const id = await q.put({ big });
    const job = await q.get({ block: false });
    assert.equal(job?.id, id);
    assert.equal(job?.data.big, big);
    assert.equal(job?.size, JSON.stringify({ big }).length);
    const bytes = new Uint8Array(10 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i += 4096) bytes[i] = i % 251;
    const pickled = fresh<Uint8Array>("/pickle");
    await pickled.put(bytes);
    const back = (await pickled.get({ block: false }))?.data;
    assert.ok(back instanceof Uint8Array);
    assert.equal(back.length, bytes.length);
    assert.ok(back.every((b, i) => b === bytes[i]));
  });

  test("NUL characters and SQL in job data are stored as they are", async () => {
    const q = fresh();
    const data = {
      nul: "a\u0000b",
      "\u0000": "key with NUL",
      sql: `'); drop table queue; --`,
      quotes: `"'\\`,
      emoji: "🍎",
    };
    await q.put(data);
    assert.deepEqual((await q.get({ block: false }))?.data, data);
  });

  test("get() and iterate() refuse bad options, naming them", async () => {
    const q = fresh();
    const bad: [unknown, ErrorClass, RegExp][] = [
      [
        "1s",
        TypeError,
        /^Cannot get job: options must be an object: received "1s"$/,
      ],
      [
        { wait: true },
        TypeError,
        /^Cannot get job: unknown option 'wait' \(known: block, timeout, signal\)$/,
      ],
      [
        { block: "no" },
        TypeError,
        /^Cannot get job: 'block' must be a boolean: received "no"$/,
      ],
      [
        { timeout: "5x" },
        TypeError,
        /^Cannot get job: 'timeout' must be .*received "5x"$/,
      ],
      [
        { timeout: -1 },
        RangeError,
        /^Cannot get job: 'timeout' must be .*received -1$/,
      ],
      [
        { timeout: NaN },
        TypeError,
        /^Cannot get job: 'timeout' must be .*received NaN$/,
      ],
      [
        { signal: {} },
        TypeError,
        /^Cannot get job: 'signal' must be an AbortSignal: received an object$/,
      ],
    ];
    for (const [options, kind, message] of bad) {
      await rejectsClear(() => q.get(options as never), kind, message);
    }
    await rejectsClear(
      () => q.iterate({ timeout: "5x" }).next(),
      TypeError,
      /^Cannot iterate: 'timeout' must be .*received "5x"$/,
    );
    await rejectsClear(
      () => q.iterate({ signal: "stop" } as never).next(),
      TypeError,
      /^Cannot iterate: 'signal' must be an AbortSignal: received "stop"$/,
    );
    const reason = new Error("stopped before");
    await assert.rejects(
      q.get({ signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
  });

  test("a timeout longer than a timer can take (24.8 days) still waits", async () => {
    const q = fresh();
    const stop = new AbortController();
    const start = performance.now();
    const got = q.get({ timeout: "30d", signal: stop.signal });
    await sleep(300);
    stop.abort(new Error("enough"));
    await assert.rejects(got, /enough/);
    assert.ok(since(start) >= 250, `returned after ${since(start)} ms`);
  });

  test("a job scheduled more than 24.8 days ahead does not make getters poll", async () => {
    let statements = 0;
    const counted = postgres(databaseUrl(), {
      max: 2,
      onnotice: () => {},
      debug: () => void statements++,
    });
    const pq = createPQ(counted, { schema: t.scratch.schema });
    try {
      const q = pq.queue(`far${n++}`);
      await q.put("later", { scheduleAt: "30d" });
      statements = 0;
      assert.equal(await q.get({ timeout: 1_000 }), null);
      assert.ok(statements < 10, `${statements} statements in 1 s`);
      await q.clear();
    } finally {
      await pq.close();
      await counted.end();
    }
  });

  test("with() and transaction() refuse what is not a transaction or a function", async () => {
    const q = fresh();
    for (const tx of [null, "tx", {}, 1]) {
      throwsClear(
        () => q.with(tx as never),
        TypeError,
        /^Cannot bind queue: expected a transaction from sql\.begin\(\): received /,
      );
    }
    await rejectsClear(
      () => q.transaction("fn" as never),
      TypeError,
      /^Cannot run transaction: expected a function: received "fn"$/,
    );
  });

  test("task() refuses bad handlers and options; its calls refuse bad data and times, writing nothing", async () => {
    const q = fresh();
    throwsClear(
      () => q.task("h", "handler" as never),
      TypeError,
      /^Cannot register task "h": the handler must be a function: received "handler"$/,
    );
    const bad: [unknown, ErrorClass, RegExp][] = [
      [
        { maxRetries: -1 },
        TypeError,
        /'maxRetries' must be a whole number of at least 0: received -1$/,
      ],
      [{ maxRetries: 1.5 }, TypeError, /'maxRetries' must be .*received 1\.5$/],
      [{ maxRetries: "2" }, TypeError, /'maxRetries' must be .*received "2"$/],
      [{ retryIn: "soon" }, TypeError, /'retryIn' must be .*received "soon"$/],
      [{ retryIn: -1 }, RangeError, /'retryIn' must be .*received -1$/],
      [
        { backoff: "linear" },
        TypeError,
        /'backoff' must be "fixed" or "exponential": received "linear"$/,
      ],
      [
        { scheduleAt: "5x" },
        TypeError,
        /'scheduleAt' must be .*received "5x"$/,
      ],
      [
        { expectedAt: new Date(NaN) },
        TypeError,
        /'expectedAt' must be .*received Invalid Date$/,
      ],
      [{ retries: 3 }, TypeError, /unknown option 'retries'/],
    ];
    for (const [options, kind, message] of bad) {
      throwsClear(
        () => q.task(`t${n++}`, () => {}, options as never),
        kind,
        new RegExp(`^Cannot register task "t\\d+": ${message.source}`),
      );
    }
    const eat = q.task("eat", () => {});
    throwsClear(() => q.task("eat", () => {}), Error, /already has a task/);
    await writesNothing(async () => {
      await rejectsClear(() => eat(1n), TypeError, /a BigInt at data/);
      await rejectsClear(
        () => eat(1, { scheduleAt: "5x" }),
        TypeError,
        /^Cannot enqueue task "eat": 'scheduleAt' must be .*received "5x"$/,
      );
      await rejectsClear(
        () => eat(1, { maxRetries: 1 } as never),
        TypeError,
        /^Cannot enqueue task "eat": unknown option 'maxRetries'/,
      );
      await rejectsClear(
        () => eat.many("x" as never),
        TypeError,
        /^Cannot enqueue task "eat": expected an array of \{ args \} items: received "x"$/,
      );
      await rejectsClear(
        () => eat.many([{ args: 1 }, { data: 2 }] as never),
        TypeError,
        /^Cannot enqueue task "eat" \(item 1\): expected an object with 'args'/,
      );
      await rejectsClear(
        () => eat.many([{ args: 1 }, { args: 2, expectedAt: "-1s" }]),
        TypeError,
        /\(item 1\): 'expectedAt' must be .*received "-1s"$/,
      );
      throwsClear(
        () => eat.with("tx" as never),
        TypeError,
        /^Cannot bind task "eat": expected a transaction from sql\.begin\(\)/,
      );
    });
  });

  test("work() refuses bad options, naming them", async () => {
    const q = fresh();
    const bad: [unknown, ErrorClass, RegExp][] = [
      [
        { concurrency: 0 },
        TypeError,
        /'concurrency' must be a whole number of at least 1: received 0$/,
      ],
      [
        { concurrency: 1.5 },
        TypeError,
        /'concurrency' must be .*received 1\.5$/,
      ],
      [
        { concurrency: "4" },
        TypeError,
        /'concurrency' must be .*received "4"$/,
      ],
      [
        { batchSize: -1 },
        TypeError,
        /'batchSize' must be a whole number of at least 1: received -1$/,
      ],
      [
        { gracePeriod: "5x" },
        TypeError,
        /'gracePeriod' must be .*received "5x"$/,
      ],
      [{ gracePeriod: -1 }, RangeError, /'gracePeriod' must be .*received -1$/],
      [
        { burst: "yes" },
        TypeError,
        /'burst' must be a boolean: received "yes"$/,
      ],
      [
        { onEvent: "log" },
        TypeError,
        /'onEvent' must be a function: received "log"$/,
      ],
      [
        { signal: true },
        TypeError,
        /'signal' must be an AbortSignal: received true$/,
      ],
      [{ threads: 2 }, TypeError, /unknown option 'threads'/],
    ];
    for (const [options, kind, message] of bad) {
      await rejectsClear(
        () => q.work(options as never),
        kind,
        new RegExp(`^Cannot work: ${message.source}`),
      );
    }
    const reason = new Error("stopped before");
    await assert.rejects(
      q.work({ signal: AbortSignal.abort(reason) }),
      (error) => error === reason,
    );
  });

  test("a grace period longer than a timer can take (24.8 days) does not end at once", async () => {
    const q = fresh();
    const eat = q.task("slow", async () => await sleep(400));
    await eat(1);
    const stop = new AbortController();
    const work = q.work({ signal: stop.signal, gracePeriod: "30d" });
    await sleep(150);
    stop.abort();
    assert.deepEqual(await work, { done: 1, retried: 0, failed: 0 });
  });

  test("failed() and retry() refuse bad arguments; retry() of an unknown id is false", async () => {
    const q = fresh();
    for (const limit of [0, -1, 1.5, "10"]) {
      await rejectsClear(
        () => q.failed({ limit } as never),
        TypeError,
        /^Cannot list failed jobs: 'limit' must be a whole number of at least 1: received /,
      );
    }
    await rejectsClear(
      () => q.failed({ max: 1 } as never),
      TypeError,
      /^Cannot list failed jobs: unknown option 'max'/,
    );
    const ids = [
      "abc",
      "",
      "0",
      "-1",
      "1.5",
      "1e3",
      " 1",
      "9".repeat(19),
      "9223372036854775808",
      null,
      {},
      1.5,
    ];
    for (const id of ids) {
      await rejectsClear(
        () => q.retry(id as string),
        TypeError,
        /^Cannot retry job: expected a job id \(a string of digits\): received /,
      );
    }
    assert.equal(await q.retry("9223372036854775807"), false);
    assert.equal(await q.retry("123456789"), false);
  });

  test("job.update() refuses data it cannot store and leaves the job as it was", async () => {
    const q = fresh();
    await q.transaction(async (bound) => {
      await bound.put({ kind: "Cox" });
      const job = await bound.get({ block: false });
      assert.ok(job);
      await rejectsClear(
        () => job.update(1n as never),
        TypeError,
        /a BigInt at data/,
      );
      assert.deepEqual(job.data, { kind: "Cox" });
    });
    const [row] = await t.sql`select count(*)::int as n from ${
      t.sql(t.scratch.schema)
    }.queue where queue = ${q.name}`;
    assert.equal(row.n, 0, "no done record was written");
  });

  test("a closed PQ refuses work with a clear error", async () => {
    const pq = createPQ(t.sql, { schema: t.scratch.schema });
    const q = pq.queue("closed");
    await pq.close();
    await rejectsClear(
      () => q.put(1),
      Error,
      /^Cannot put job: this PQ is closed$/,
    );
    await rejectsClear(
      () => q.get(),
      Error,
      /^Cannot get job: this PQ is closed$/,
    );
    await rejectsClear(
      () => q.work(),
      Error,
      /^Cannot work: this PQ is closed$/,
    );
    await pq.close(); // twice is fine
  });

  test("round trip through a real queue preserves generated JSON values", async () => {
    const q = fresh();
    const json = fc.jsonValue({ stringUnit: "binary", maxDepth: 4 })
      .map((value) => JSON.parse(JSON.stringify(value)));
    await fc.assert(
      fc.asyncProperty(json, async (value) => {
        await q.put(value);
        const job = await q.get({ block: false });
        assert.deepStrictEqual(job?.data, value);
        assert.equal(job?.size, JSON.stringify(value).length);
      }),
      { numRuns: 100 },
    );
  });

  test("round trip through a real queue preserves generated rich values (/pickle)", async () => {
    const q = fresh("/pickle");
    const strings = fc.oneof(
      fc.string({ unit: "binary", maxLength: 12 }),
      fc.constantFrom("$pq", "v", "\u0000", "😀", `'; drop table queue; --`),
    );
    const leaves = fc.oneof(
      strings,
      fc.boolean(),
      fc.constant(null),
      fc.constant(undefined),
      fc.double(),
      fc.integer(),
      fc.constantFrom(NaN, -0, Infinity, -Infinity),
      fc.bigInt(),
      fc.date({ noInvalidDate: true }),
      fc.uint8Array({ maxLength: 8 }),
      fc.float64Array({ maxLength: 4 }),
      fc.bigInt64Array({ maxLength: 4 }),
    );
    const { value } = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: "small", maxDepth: 3 },
        leaves,
        tie("array"),
        tie("object"),
        tie("map"),
        tie("set"),
      ),
      array: fc.array(tie("value"), { maxLength: 4 }),
      object: fc.dictionary(
        fc.string({ unit: "binary", maxLength: 6 }).filter((k) =>
          k !== "__proto__"
        ),
        tie("value"),
        { maxKeys: 4, noNullPrototype: true },
      ),
      map: fc.array(fc.tuple(strings, tie("value")), { maxLength: 3 })
        .map((entries) => new Map(entries)),
      set: fc.array(leaves, { maxLength: 3 }).map((items) => new Set(items)),
    }));
    await fc.assert(
      fc.asyncProperty(value, async (data) => {
        await q.put(data);
        const job = await q.get({ block: false });
        assert.ok(job, "the job came back");
        assert.deepStrictEqual(job.data, data);
      }),
      { numRuns: 100 },
    );
  });

  test("the table is intact after all of the above", async () => {
    const schema = t.scratch.schema;
    const columns = await t
      .sql`select column_name from information_schema.columns
      where table_schema = ${schema} and table_name = 'queue'
      order by ordinal_position`;
    assert.deepEqual(columns.map((c) => c.column_name), [
      "id",
      "queue",
      "state",
      "task",
      "data",
      "attempts",
      "enqueued_at",
      "schedule_at",
      "expected_at",
      "finished_at",
      "error",
      "started_at",
      "lease_until",
      "lease_token",
      "max_attempts",
      "progress",
      "result",
      "key",
      "group_key",
      "trace",
    ]);
    const [objects] = await t.sql`select
      (select count(*)::int from pg_indexes
        where schemaname = ${schema} and tablename = 'queue') as indexes,
      (select count(*)::int from pg_trigger
        where tgrelid = to_regclass(${`"${schema}".queue`})
          and not tgisinternal) as triggers,
      obj_description(to_regclass(${`"${schema}".queue`}), 'pg_class')
        as comment`;
    assert.deepEqual({ ...objects }, {
      indexes: 8,
      triggers: 1,
      comment: `pq schema ${TABLE_VERSION}`,
    });
    const q = fresh<string>();
    const got = q.get({ timeout: "5s" });
    await sleep(100);
    await q.put("still works");
    assert.equal((await got)?.data, "still works");
  });
});
