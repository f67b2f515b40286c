/**
 * Cost per operation against a deep backlog: `deno task bench:backlog`
 * (10 minutes or more: it loads 10 million rows; `--quick` stops at
 * 100,000). For 10,000, 1 million and 10 million ready jobs (and, at the
 * largest, 1 million more scheduled for tomorrow), loaded with one
 * `insert ... select` and vacuumed as autovacuum would: single put, get()
 * and size() latency (exact, and with `atMost: 10_000`), and the table's and
 * its indexes' size.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { benchUrl, freshSchema } from "../db.ts";
import { percentile } from "../stats.ts";

const quick = process.argv.includes("--quick");
const url = benchUrl();
const log = (text: string) => process.stderr.write(`${text}\n`);
const SIZES = quick ? [10_000, 100_000] : [10_000, 1_000_000, 10_000_000];
const OPS = 200;

interface Row {
  rows: number;
  scheduled: number;
  put: number[];
  get: number[];
  size: number[];
  /** `size({ atMost: 10_000 })`. */
  sizeAtMost: number[];
  tableMb: number;
  indexMb: number;
}

async function timed(n: number, op: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await op();
    times.push(performance.now() - start);
  }
  return times;
}

async function measure(rows: number, scheduled: number): Promise<Row> {
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  const scratch = await freshSchema(sql);
  try {
    const pq = createPQ(sql, { schema: scratch.schema });
    await pq.create();
    const t = `${scratch.schema}.queue`;
    for (let done = 0; done < rows; done += 1_000_000) {
      const n = Math.min(1_000_000, rows - done);
      await sql.unsafe(`insert into ${t} (queue, data, state)
        select 'jobs', json_build_object('n', i), 'ready'
        from generate_series(1, ${n}) as i`);
    }
    if (scheduled) {
      await sql.unsafe(`insert into ${t} (queue, data, state, schedule_at)
        select 'jobs', json_build_object('n', i), 'scheduled',
          now() + interval '1 day'
        from generate_series(1, ${scheduled}) as i`);
    }
    await sql.unsafe(`vacuum analyze ${t}`);
    const q = pq.queue("jobs");
    const put = await timed(OPS, () => q.put({ n: 0 }));
    const get = await timed(OPS, () => q.get({ block: false }));
    const size = await timed(5, () => q.size());
    const sizeAtMost = await timed(5, () => q.size({ atMost: 10_000 }));
    const [sizes] = await sql`select
      pg_table_size(${t}::regclass) / 1048576.0 as table_mb,
      pg_indexes_size(${t}::regclass) / 1048576.0 as index_mb`;
    await pq.close();
    return {
      rows,
      scheduled,
      put,
      get,
      size,
      sizeAtMost,
      tableMb: Number(sizes.table_mb),
      indexMb: Number(sizes.index_mb),
    };
  } finally {
    await scratch.drop();
    await sql.end();
  }
}

const fmt = (n: number, digits = 2) =>
  n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
const p = (times: number[]) =>
  `${fmt(percentile(times, 50))} / ${fmt(percentile(times, 99))}`;

const results: Row[] = [];
for (const rows of SIZES) {
  const scheduled = rows === SIZES.at(-1) ? rows / 10 : 0;
  log(`${rows.toLocaleString("en-US")} ready jobs...`);
  results.push(await measure(rows, scheduled));
}
console.log(`pq backlog, ${quick ? "quick" : "full"} run (ms: p50 / p99)`);
console.log();
console.log(
  "| ready jobs | + scheduled | put | get() | size() | size({ atMost: 10_000 }) | table MB | indexes MB |",
);
console.log("| --: | --: | --: | --: | --: | --: | --: | --: |");
for (const r of results) {
  console.log(
    `| ${r.rows.toLocaleString("en-US")} | ${
      r.scheduled.toLocaleString("en-US")
    } | ${p(r.put)} | ${p(r.get)} | ${fmt(percentile(r.size, 50))} | ${
      fmt(percentile(r.sizeAtMost, 50))
    } | ${fmt(r.tableMb, 0)} | ${fmt(r.indexMb, 0)} |`,
  );
}
