/**
 * Helpers of the fault tests: sizes with environment overrides, worker
 * processes, waiting for a condition, and the exactly-once check.
 *
 * Sizes are small enough for the whole fault suite to take a few minutes on
 * a busy two-core machine. Scale them up for a longer local run:
 *
 * ```sh
 * PQ_FAULT_JOBS=100000 PQ_FAULT_WORKERS=6 deno run -A tests/run.ts deno tests/fault
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import process from "node:process";
import type postgres from "postgres";
import { type Child, spawnTs } from "../_spawn.ts";
import { sleep } from "../_pq.ts";

/** A whole number from the environment, or `fallback`. */
export function envNumber(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) {
    throw new TypeError(`${name} must be a number: received ${text}`);
  }
  return value;
}

/** Creates `<schema>.effects`: one row per run of a handler that committed. */
export async function createEffects(
  sql: postgres.Sql,
  schema: string,
): Promise<void> {
  // No unique key on purpose: a duplicate must show up, not fail a worker.
  // `arg` is the job's argument when it is a number: a name for the job that
  // survives a failover, where job ids can be handed out again.
  await sql`create table ${sql(schema)}.effects (
    job_id bigint not null,
    attempt int,
    pid int,
    arg bigint,
    written_at timestamptz not null default clock_timestamp()
  )`;
}

/** Counts of the effects table and the job table. */
export interface Tally {
  /** Rows in effects. */
  effects: number;
  /** Distinct job ids in effects. */
  jobs: number;
  /** Rows left in the job table, in any state. */
  left: number;
  /** Failed jobs in the job table. */
  failed: number;
}

/** Reads the counts of {@linkcode Tally}. */
export async function tally(
  sql: postgres.Sql,
  schema: string,
): Promise<Tally> {
  const [row] = await sql`select
    (select count(*)::int from ${sql(schema)}.effects) as effects,
    (select count(distinct job_id)::int from ${sql(schema)}.effects) as jobs,
    (select count(*)::int from ${sql(schema)}.queue) as left,
    (select count(*)::int from ${sql(schema)}.queue
      where state = 'failed') as failed`;
  return row as unknown as Tally;
}

/**
 * Asserts that every job of `ids` has exactly one effect, that no other job
 * has one, and that the job table is empty.
 */
export async function assertExactlyOnce(
  sql: postgres.Sql,
  schema: string,
  ids: readonly string[],
): Promise<void> {
  const doubled = await sql`select job_id::text, count(*)::int as n
    from ${sql(schema)}.effects group by job_id having count(*) > 1
    order by job_id limit 10`;
  assert.deepEqual(
    doubled.map((r) => `${r.job_id} x${r.n}`),
    [],
    "no job's effect is written twice",
  );
  const [missing] = await sql`select count(*)::int as n
    from unnest(${ids}::int8[]) as id
    where not exists (select 1 from ${sql(schema)}.effects e
      where e.job_id = id)`;
  assert.equal(missing.n, 0, "every job's effect is written");
  const counts = await tally(sql, schema);
  assert.equal(counts.effects, ids.length, "one effect per job, no strays");
  assert.equal(counts.failed, 0, "no job failed");
  assert.equal(counts.left, 0, "the queue is empty");
}

type Falsy = null | undefined | false | 0 | "";

/**
 * Waits until `check` returns a truthy value, looking every `everyMs`.
 *
 * @throws {Error} Naming `what` when `timeoutMs` passes first.
 */
export async function waitFor<T>(
  check: () => Promise<T | Falsy> | T | Falsy,
  what: string,
  timeoutMs: number,
  everyMs = 200,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as T;
    if (performance.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(everyMs);
  }
}

/** Settings of a worker process (see tests/fixtures/fault_worker.ts). */
export interface WorkerSettings {
  mode: "burst" | "run";
  /** Its pool's application_name. */
  app: string;
  concurrency?: number;
  handlerMs?: number;
  grace?: string;
  /** Print "OK <arg>" for each job whose batch committed. */
  report?: boolean;
}

/** Starts tests/fixtures/fault_worker.ts on the current runtime. */
export function startWorker(
  url: string,
  schema: string,
  settings: WorkerSettings,
): Child {
  return spawnTs("tests/fixtures/fault_worker.ts", [schema], {
    DATABASE_URL: url,
    PQ_FAULT_MODE: settings.mode,
    PQ_FAULT_APP: settings.app,
    PQ_FAULT_CONCURRENCY: String(settings.concurrency ?? 4),
    PQ_FAULT_HANDLER_MS: String(settings.handlerMs ?? 0),
    PQ_FAULT_GRACE: settings.grace ?? "5s",
    PQ_FAULT_REPORT: settings.report ? "1" : "",
  });
}

/**
 * Throws if a worker process has exited: a crash must fail the test at once,
 * not after a long wait for jobs nobody works on.
 */
export function assertAlive(workers: readonly Child[]): void {
  for (const [i, w] of workers.entries()) {
    const code = w.process.exitCode ?? w.process.signalCode;
    if (code !== null) {
      throw new Error(
        `worker process ${i} exited (${code}); its last lines: ${
          w.lines.slice(-3).join(" | ")
        }`,
      );
    }
  }
}

/** What a worker process printed at its end: "DONE d r f e". */
export interface WorkerResult {
  done: number;
  retried: number;
  failed: number;
  errors: number;
}

/** Reads a worker's DONE line, or null if it never printed one. */
export function workerResult(child: Child): WorkerResult | null {
  const line = child.lines.find((l) => l.startsWith("DONE "));
  if (!line) return null;
  const [done, retried, failed, errors] = line.split(" ").slice(1).map(Number);
  return { done, retried, failed, errors };
}

/** FAILURE lines a worker printed: jobs it stored as failed. */
export function workerFailures(child: Child): string[] {
  return child.lines.filter((l) => l.startsWith("FAILURE "));
}

/**
 * Stops a worker with SIGTERM and waits; SIGKILL after `timeoutMs`.
 *
 * @returns The exit code (0 after a graceful stop), or the signal's name.
 */
export async function stopWorker(
  child: Child,
  timeoutMs = 20_000,
): Promise<number | string> {
  // Not child.process.kill(): Deno 2.9's child_process then reports the
  // signal as the cause of the exit even when the child exits by itself.
  process.kill(child.process.pid!, "SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      child.process.kill("SIGKILL");
      resolve("killed after timeout");
    }, timeoutMs);
  });
  try {
    const code = await Promise.race([child.exited, killed]);
    if (code !== 0) {
      console.error(`worker ${child.process.pid}: ${child.lines.join(" | ")}`);
    }
    return code;
  } finally {
    clearTimeout(timer);
    await child.exited;
  }
}

/** A random whole number from `min` to `max`. */
export function between(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

/** The p-th percentile (0-100) of some numbers. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const index = Math.min(
    sorted.length - 1,
    Math.ceil((p / 100) * sorted.length) - 1,
  );
  return sorted[Math.max(0, index)];
}

/** Puts `count` jobs of a task in chunks; returns their ids. */
export async function enqueue(
  many: (items: { args: unknown }[]) => Promise<string[]>,
  count: number,
  chunk = 1_000,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += chunk) {
    const n = Math.min(chunk, count - i);
    ids.push(
      ...await many(Array.from({ length: n }, (_, k) => ({
        args: i + k,
      }))),
    );
  }
  return ids;
}
