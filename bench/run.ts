/**
 * The benchmark: `deno task bench` (several minutes) or
 * `deno task bench --quick` (a smoke run: 1/20 of the sizes, one repetition,
 * churn with 20,000 jobs). Also runs on Node (`node --import tsx
 * bench/run.ts`) and Bun (`bun bench/run.ts`).
 *
 * Each workload runs pq's version and the same operation in raw SQL on the
 * same postgres.js client, alternating which goes first, each run in a
 * fresh schema; the table shows medians and issue 4's targets.
 *
 * Options: `--quick`, `--reps=N` (repetitions of every workload),
 * `--only=word` (workloads whose name contains it), `--vacuum=S` (when the
 * server's autovacuum is off, churn VACUUMs its table every S seconds,
 * default 10; 0: never). The server comes from `DATABASE_URL` (default
 * `postgres://root@127.0.0.1:5432/test`); OpenTelemetry from
 * `PQ_BENCH_OTEL` (`off`, `api` or `sdk`: see `otel.ts`).
 *
 * @module
 */

import process from "node:process";
import { benchUrl, connect, freshSchema } from "./db.ts";
import { otelMode, startOtel } from "./otel.ts";
import { row, summarize, table } from "./report.ts";
import type { RunResult, Workload } from "./workload.ts";
import { churn } from "./workloads/churn.ts";
import { getLoop } from "./workloads/get_loop.ts";
import { latency } from "./workloads/latency.ts";
import { putConcurrent } from "./workloads/put_concurrent.ts";
import { putGet } from "./workloads/put_get.ts";
import { putMany } from "./workloads/put_many.ts";
import { putOne } from "./workloads/put_one.ts";
import { work } from "./workloads/work.ts";
import { workLease } from "./workloads/work_lease.ts";
import { putKeyed } from "./workloads/put_keyed.ts";
import { workGroups } from "./workloads/work_groups.ts";

const WORKLOADS: Workload[] = [
  putOne,
  putKeyed,
  putConcurrent,
  putMany,
  work,
  workLease,
  workGroups,
  latency,
  getLoop,
  putGet,
  churn,
];

function option(args: string[], name: string): string | undefined {
  const prefix = `--${name}=`;
  return args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
}

const args = process.argv.slice(2);
const known = /^--(quick|reps=\d+|only=.+|vacuum=\d+(\.\d+)?)$/;
const unknown = args.filter((a) => !known.test(a));
if (unknown.length) {
  console.error(
    `Unknown arguments: ${
      unknown.join(" ")
    } (known: --quick, --reps=N, --only=word, --vacuum=S)`,
  );
  process.exit(2);
}
const quick = args.includes("--quick");
const reps = option(args, "reps");
const only = option(args, "only");
const scale = quick ? 1 / 20 : 1;
const url = benchUrl();
const sql = connect(url);
const [{ autovacuum }] =
  await sql`select current_setting('autovacuum') as autovacuum`;
const vacuumMs = autovacuum === "on"
  ? 0
  : Number(option(args, "vacuum") ?? 10) * 1000;
const selected = WORKLOADS.filter((w) => !only || w.name.includes(only));
const otel = otelMode();
const stopOtel = await startOtel(otel);

const log = (text: string) => process.stderr.write(`${text}\n`);
const rows: string[][] = [];
const details: string[] = [];
const began = performance.now();

async function once(
  workload: Workload,
  side: "pq" | "raw",
): Promise<RunResult> {
  const scratch = await freshSchema(sql);
  try {
    return await workload[side]({
      sql,
      url,
      schema: scratch.schema,
      scale,
      vacuumMs,
    });
  } finally {
    await scratch.drop();
  }
}

try {
  for (const workload of selected) {
    const count = reps ? Number(reps) : quick ? 1 : workload.reps;
    const pq: RunResult[] = [], raw: RunResult[] = [];
    for (let rep = 0; rep < count; rep++) {
      // Alternate which side goes first, so drift hits both alike.
      for (
        const side of rep % 2 ? ["raw", "pq"] as const : ["pq", "raw"] as const
      ) {
        const t0 = performance.now();
        const result = await once(workload, side);
        (side === "pq" ? pq : raw).push(result);
        log(
          `${workload.name} [${side} ${rep + 1}/${count}]: ${
            Math.round(result.jobs / (result.ms / 1000))
          } per s (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        );
      }
    }
    const summary = summarize(workload, pq, raw);
    rows.push(row(workload, summary));
    details.push(...(workload.details?.(summary) ?? []));
  }
} finally {
  await sql.end();
  await stopOtel();
}

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? "deno"
  : typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? "bun"
  : "node";
console.log(
  `pq benchmark, ${quick ? "quick" : "full"} run on ${runtime} ${
    process.versions[runtime as "node"] ?? process.version
  } (${((performance.now() - began) / 1000).toFixed(0)} s; medians of ${
    reps ?? (quick ? 1 : "5 (churn: 1)")
  } runs; ratio = median of per-run pq/raw, for latency pq p50 / raw p50; OpenTelemetry: ${otel})`,
);
console.log();
console.log(table(rows));
details.push(
  autovacuum === "on"
    ? "- the server's autovacuum is on; churn does not VACUUM by itself"
    : vacuumMs
    ? `- the server's autovacuum is off: pq vacuums its own table (src/vacuum.ts); for raw SQL, churn runs VACUUM on its table every ${
      vacuumMs / 1000
    } s (--vacuum=S to change, 0 for never)`
    : "- the server's autovacuum is off: pq vacuums its own table (src/vacuum.ts); raw SQL's table is never vacuumed (--vacuum=0)",
);
if (details.length) {
  console.log();
  console.log(details.join("\n"));
}
