/**
 * What a workload is: a pq run and a raw-SQL run of the same operation, and
 * how the two are compared with issue 4's target.
 *
 * @module
 */

import type { Sql } from "../mod.ts";

/** What a run gets: the shared client and a schema of its own. */
export interface RunContext {
  /** The client both pq and the raw baseline use. */
  sql: Sql;
  /** The URL, for workloads that need a client of their own. */
  url: string;
  /** A fresh schema, dropped after the run. */
  schema: string;
  /** 1 for the full run, 1/20 with `--quick`. */
  scale: number;
  /**
   * When the server's autovacuum is off: VACUUM the churn table this often
   * (milliseconds; 0: never).
   */
  vacuumMs: number;
}

/** What one run measured. */
export interface RunResult {
  /** Jobs (or operations) done in the timed part. */
  jobs: number;
  /** Milliseconds the timed part took. */
  ms: number;
  /** Per-operation latencies in milliseconds, if they make sense. */
  latencies?: number[];
  /** Workload-specific figures (RSS, table size, ...). */
  extra?: Record<string, number>;
}

/** The medians of one side's runs. */
export interface SideSummary {
  /** Jobs (or operations) per second. */
  rate: number;
  /** Latency median and 99th percentile (NaN when not measured). */
  p50: number;
  p99: number;
  /** The medians of each `extra` figure. */
  extra: Record<string, number>;
}

/** Both sides of a workload, summarized. */
export interface Summary {
  pq: SideSummary;
  raw: SideSummary;
  /** The median of the per-repetition ratios pq/raw. */
  ratio: number;
}

/** One benchmark: the same operation through pq and in raw SQL. */
export interface Workload {
  /** The table's first column. */
  name: string;
  /** What the raw side does, and anything else worth a note. */
  notes: string;
  /** How many repetitions at full size (quick runs do one). */
  reps: number;
  /** Whether jobs/s means something here (not for a latency probe). */
  showRate?: boolean;
  /** Per-repetition ratio; default pq jobs/s over raw jobs/s. */
  ratio?: (pq: RunResult, raw: RunResult) => number;
  /** Issue 4's target, if it sets one. */
  target?: {
    text: string;
    met(summary: Summary): boolean;
  };
  /** Lines printed under the table (for churn: RSS and table sizes). */
  details?(summary: Summary): string[];
  /** Runs pq's version. */
  pq(ctx: RunContext): Promise<RunResult>;
  /** Runs the raw-SQL version. */
  raw(ctx: RunContext): Promise<RunResult>;
}

/** `n` scaled for quick runs, at least `min`. */
export function scaled(n: number, scale: number, min: number): number {
  return Math.max(min, Math.round(n * scale));
}

/**
 * Runs `count` operations on `workers` concurrent loops, each taking the
 * next index from a shared counter, and times each one.
 */
export async function timedLoops(
  count: number,
  workers: number,
  op: (i: number) => Promise<unknown>,
): Promise<RunResult> {
  const latencies = new Array<number>(count);
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t0 = performance.now();
        await op(i);
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  return { jobs: count, ms: performance.now() - start, latencies };
}
