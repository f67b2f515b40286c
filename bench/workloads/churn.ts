/**
 * churn: 1,000,000 jobs through one queue at a steady pace. A producer puts
 * batches of 1,000 while 8 consumers work them, the backlog kept under
 * 10,000 jobs. Reports the first 100,000 jobs' rate against the last
 * 100,000's, the process's RSS, and the table's size.
 *
 * @module
 */

import { openPQ, relationBytes, rss, sleep } from "../db.ts";
import { RawQueue } from "../raw.ts";
import { formatBytes, formatCount, formatRatio } from "../stats.ts";
import {
  type RunContext,
  type RunResult,
  scaled,
  type SideSummary,
  type Workload,
} from "../workload.ts";

const BATCH = 1_000;
const BACKLOG = 10_000;
const CONCURRENCY = 8;
const SAMPLE_MS = 1_000;

/** How the jobs come and go in one run. */
interface Flow {
  ctx: RunContext;
  /** The table whose size is reported. */
  table: string;
  /** Puts jobs number `from` to `from + count - 1` in one statement. */
  put(from: number, count: number): Promise<unknown>;
  /** Works until `signal` aborts, calling `done()` after each job. */
  consume(done: () => void, signal: AbortSignal): Promise<unknown>;
  /**
   * VACUUM the table every `ctx.vacuumMs` from the bench. Only for raw SQL:
   * pq vacuums its own table when the server's autovacuum is off.
   */
  benchVacuums: boolean;
}

/** Runs one churn and measures it. */
async function drive(flow: Flow): Promise<RunResult> {
  const { ctx, table } = flow;
  const n = scaled(1_000_000, ctx.scale, 20_000);
  const window = n / 10;
  const sizeBefore = await relationBytes(ctx.sql, ctx.schema, table);
  const rssStart = rss();
  let rssMax = rssStart, sizeMax = sizeBefore, put = 0, done = 0;
  const marks: number[] = [];
  let rssWarm = NaN;
  let room: (() => void) | null = null;
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => finish = resolve);
  const stop = new AbortController();
  const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, rss());
    relationBytes(ctx.sql, ctx.schema, table).then(
      (bytes) => sizeMax = Math.max(sizeMax, bytes),
      () => {},
    );
  }, SAMPLE_MS);
  let vacuums = 0;
  const vacuuming = (async () => {
    if (!ctx.vacuumMs || !flow.benchVacuums) return;
    while (!stop.signal.aborted) {
      await abortableSleep(ctx.vacuumMs, stop.signal);
      if (stop.signal.aborted) return;
      await ctx.sql`vacuum ${ctx.sql(ctx.schema)}.${ctx.sql(table)}`;
      vacuums++;
    }
  })();
  const start = performance.now();
  marks.push(start);
  const consuming = flow.consume(() => {
    done++;
    if (done % window === 0) {
      marks.push(performance.now());
      if (marks.length === 2) rssWarm = rss();
    }
    if (room && put - done <= BACKLOG - BATCH) {
      room();
      room = null;
    }
    if (done === n) finish();
  }, stop.signal);
  try {
    while (put < n) {
      if (put - done > BACKLOG - BATCH) {
        await new Promise<void>((resolve) => room = resolve);
      }
      const k = Math.min(BATCH, n - put);
      await flow.put(put, k);
      put += k;
    }
    await finished;
  } finally {
    stop.abort();
    clearInterval(sampler);
    await consuming;
    await vacuuming;
  }
  const ms = performance.now() - start;
  const rssEnd = rss();
  const sizeAfter = await relationBytes(ctx.sql, ctx.schema, table);
  const rate = (i: number) => window / ((marks[i + 1] - marks[i]) / 1000);
  const first = rate(0), last = rate(marks.length - 2);
  const windows: Record<string, number> = {};
  for (let i = 0; i + 1 < marks.length; i++) windows[`window${i}`] = rate(i);
  return {
    jobs: n,
    ms,
    extra: {
      first,
      last,
      lastOverFirst: last / first,
      rssStart,
      rssWarm,
      rssEnd,
      rssMax: Math.max(rssMax, rssEnd),
      sizeBefore,
      sizeAfter,
      sizeMax: Math.max(sizeMax, sizeAfter),
      window,
      vacuums,
      ...windows,
    },
  };
}

/** Like `sleep`, but ends early when `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

function items(from: number, count: number): { n: number }[] {
  return Array.from({ length: count }, (_, i) => ({ n: from + i }));
}

function mb(bytes: number): string {
  return `${bytes >= 0 ? "+" : ""}${formatBytes(bytes)}`;
}

function describeSide(label: string, side: SideSummary): string[] {
  const x = side.extra;
  const windows = Object.keys(x)
    .filter((k) => k.startsWith("window") && k !== "window")
    .map((k) => formatCount(x[k]));
  return [
    `- churn ${label}: first ${formatCount(x.window)} jobs ${
      formatCount(x.first)
    } jobs/s, last ${formatCount(x.window)} ${formatCount(x.last)} jobs/s (${
      formatRatio(x.lastOverFirst)
    }); each ${formatCount(x.window)}: ${windows.join(", ")}`,
    `- churn ${label} memory and table: RSS ${
      formatBytes(x.rssStart)
    } at start, ${formatBytes(x.rssWarm)} after the first ${
      formatCount(x.window)
    }, ${formatBytes(x.rssEnd)} at end (${
      mb(x.rssEnd - x.rssStart)
    } from start, ${mb(x.rssEnd - x.rssWarm)} after warm-up; max ${
      formatBytes(x.rssMax)
    }); table ${formatBytes(x.sizeBefore)} before, ${
      formatBytes(x.sizeAfter)
    } after (max ${formatBytes(x.sizeMax)}); ${x.vacuums} VACUUMs by the bench`,
  ];
}

export const churn: Workload = {
  name: "churn, 1,000,000 jobs (20,000 quick)",
  notes:
    "put batches of 1,000 + work, concurrency 8, backlog ≤ 10,000; raw: unnest insert + 8 transaction-per-job loops",
  reps: 1,
  target: {
    text: "last/first ≥ 0.8, RSS +< 50 MB after warm-up",
    met: (s) =>
      s.pq.extra.lastOverFirst >= 0.8 &&
      s.pq.extra.rssEnd - s.pq.extra.rssWarm < 50 * 1_048_576,
  },
  details: (s) => [...describeSide("pq", s.pq), ...describeSide("raw", s.raw)],
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("churn");
      const noop = q.task("noop", (_args: { n: number }) => {});
      return await drive({
        ctx,
        benchVacuums: false,
        table: pq.table,
        put: (from, count) =>
          noop.many(items(from, count).map((args) => ({ args }))),
        consume: (done, signal) =>
          q.work({
            concurrency: CONCURRENCY,
            signal,
            onEvent: (e) => {
              if (e.type === "success") done();
            },
          }),
      });
    } finally {
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    return await drive({
      ctx,
      benchVacuums: true,
      table: "raw",
      put: (from, count) => raw.putMany("churn", items(from, count)),
      consume: (done, signal) =>
        Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (!signal.aborted) {
              if (await raw.work("churn", () => {})) done();
              else await sleep(2);
            }
          }),
        ),
    });
  },
};
