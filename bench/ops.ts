/**
 * How long `pq.stats()` (and the dashboard's overview) take on a big table:
 *
 * ```sh
 * deno run -A bench/ops.ts [--rows=10000000] [--keep] [--reps=20]
 * ```
 *
 * Fills a table in a schema of its own (`pq_bench_ops_<rows>`) with `rows`
 * jobs in 8 queues of 4 tasks each, in every state (70% ready task jobs, 5%
 * ready plain jobs, 10% scheduled, 2% running, 3% failed, 10% completed and
 * kept), analyzes it, then times `stats()`, a GET of the dashboard's
 * overview and, alone, the paused queues the overview reads beside
 * `stats()`, and prints p50 and p99 beside a plain `count(*)` of the table
 * by queue and state, which is what they avoid. `--keep` keeps the schema
 * for the next run (filling 10 million rows takes minutes).
 *
 * @module
 */

import process from "node:process";
import { createPQ } from "../mod.ts";
import { dashboard } from "../dashboard.ts";
import { pausedQueues } from "../src/admin.ts";
import { benchUrl, connect } from "./db.ts";
import { formatCount, percentile } from "./stats.ts";

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ??
    fallback;
const rows = Number(arg("rows", "10000000"));
const reps = Number(arg("reps", "20"));
const keep = process.argv.includes("--keep");
const schema = `pq_bench_ops_${rows}`;

const sql = connect(benchUrl(), 4);
const pq = createPQ(sql, { schema, listen: false });

async function fill(): Promise<void> {
  const [{ found }] = await sql`select count(*)::int as found
    from pg_tables where schemaname = ${schema} and tablename = 'queue'`;
  if (found) {
    console.log(`reusing ${schema}.queue`);
    return;
  }
  await pq.create();
  const started = performance.now();
  const t = `"${schema}".queue`;
  // In slices of a million, so that progress shows and no one statement
  // holds gigabytes of WAL.
  for (let from = 0; from < rows; from += 1_000_000) {
    const to = Math.min(rows, from + 1_000_000) - 1;
    await sql.unsafe(
      `insert into ${t} (queue, task, state, data, enqueued_at, schedule_at,
        lease_until, finished_at)
      select 'queue-' || (i % 8), case when s.state = 'plain' then null
          else 'task-' || (i / 8 % 4) end,
        case when s.state = 'plain' then 'ready' else s.state end,
        '{"n":1}', now() - (i % 3600) * interval '1 second',
        case when s.state = 'scheduled' then now() + interval '1 hour' end,
        case when s.state = 'running' then now() + interval '5 minutes' end,
        case when s.state in ('failed', 'completed') then now() end
      from generate_series($1::int8, $2::int8) as i,
        lateral (select case
          when i % 100 < 70 then 'ready'
          when i % 100 < 75 then 'plain'
          when i % 100 < 85 then 'scheduled'
          when i % 100 < 87 then 'running'
          when i % 100 < 90 then 'failed'
          else 'completed' end as state) as s`,
      [from, to],
    );
    console.log(`  ${formatCount(to + 1)} rows`);
  }
  await sql.unsafe(`vacuum analyze ${t}`);
  console.log(
    `filled ${formatCount(rows)} rows in ${
      ((performance.now() - started) / 1000).toFixed(0)
    } s`,
  );
}

async function time(what: string, run: () => Promise<unknown>) {
  for (let i = 0; i < 3; i++) await run();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await run();
    ms.push(performance.now() - start);
  }
  console.log(
    `| ${what.padEnd(34)} | ${formatCount(rows).padStart(10)} | ${
      percentile(ms, 50).toFixed(1).padStart(7)
    } ms | ${percentile(ms, 99).toFixed(1).padStart(7)} ms |`,
  );
}

try {
  await fill();
  const view = dashboard(pq);
  console.log(
    `\n| operation${" ".repeat(26)}| rows       | p50        | p99        |`,
  );
  console.log(`| ${"-".repeat(34)} | ---------- | ---------- | ---------- |`);
  await time("pq.stats()", () => pq.stats());
  await time("dashboard overview (GET /)", async () => {
    const response = await view(new Request("http://bench/"));
    if (!response.ok) throw new Error(`GET / answered ${response.status}`);
    await response.text();
  });
  // The overview's one statement beside stats(): its share of the GET.
  await time("paused queues (overview's extra)", () => pausedQueues(pq));
  await time("plain SQL: count(*) by queue, state", () =>
    sql.unsafe(
      `select queue, state, count(*) from "${schema}".queue group by 1, 2`,
    ));
} finally {
  await pq.close();
  if (!keep) await sql.unsafe(`drop schema if exists "${schema}" cascade`);
  await sql.end();
}
