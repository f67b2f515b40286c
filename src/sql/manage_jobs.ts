/**
 * The statements off the hot path: counting, clearing, rewriting a taken
 * job's data, listing and retrying failed jobs.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { arrayLiteral } from "./arrays.ts";
import { isoText } from "./insert_jobs.ts";
import { epochMs, toDate } from "./take_jobs.ts";

/**
 * Counts the ready jobs of a queue (plain and task jobs, and scheduled jobs
 * that came due), or of one of its tasks. Three counts so each uses its
 * partial index; with `atMost`, each stops there (an index scan with a
 * limit), so the cost no longer grows with the backlog.
 */
export async function countJobs(
  db: Executor,
  names: TableNames,
  queue: string,
  task?: string,
  atMost?: number,
): Promise<number> {
  const t = names.qualified;
  const params: unknown[] = task === undefined ? [queue] : [queue, task];
  const limit = atMost === undefined ? "" : `limit $${params.push(atMost)}`;
  const count = (where: string) =>
    `(select count(*) from (select 1 from ${t} where queue = $1 and ${where}
      ${limit}) as s)`;
  const ofTask = task === undefined ? "" : "and task = $2";
  const due = "state = 'scheduled' and schedule_at <= statement_timestamp()";
  const parts = task === undefined
    ? [
      count("state = 'ready' and task is null"),
      count("state = 'ready' and task is not null"),
      count(due),
    ]
    : [
      count(`state = 'ready' and task is not null ${ofTask}`),
      count(`${due} ${ofTask}`),
    ];
  const [row] = await db.unsafe(
    `select ${parts.join(" + ")}`,
    params as never[],
    { prepare: true },
  ).values();
  const n = Number(row[0]);
  return atMost === undefined ? n : Math.min(n, atMost);
}

/** Deletes every job of a queue, in any state; returns how many. */
export async function deleteJobs(
  db: Executor,
  names: TableNames,
  queue: string,
): Promise<number> {
  const t = names.qualified;
  const [row] = await db.unsafe(
    `with a as (
      delete from ${t} where queue = $1 and state = 'ready' and task is null
      returning 1
    ), b as (
      delete from ${t} where queue = $1 and state = 'ready' and task is not null
      returning 1
    ), c as (
      delete from ${t} where queue = $1 and state = 'scheduled' returning 1
    ), d as (
      delete from ${t} where queue = $1 and state in ('failed', 'done')
      returning 1
    )
    select (select count(*) from a) + (select count(*) from b)
      + (select count(*) from c) + (select count(*) from d)`,
    [queue],
    { prepare: true },
  ).values();
  return Number(row[0]);
}

/** The stored fields of a job that pq writes back. */
export interface JobRecord {
  id: string;
  queue: string;
  task: string | null;
  data: string;
  attempts: number;
  enqueuedAt: Date;
  scheduleAt: Date | null;
  expectedAt: Date | null;
  /** Its unique key (undefined: none). */
  key?: string | null;
  /** Its flow-control group (undefined: none). */
  group?: string | null;
  /** The trace context of its put (undefined: none; see `telemetry.ts`). */
  trace?: string | null;
}

/**
 * Writes a taken job's new data. Taking deleted the row, so this stores the
 * job again as a `done` record (visible in the table, never taken again); if
 * the row exists (the taking transaction rolled back), only its data changes.
 */
export async function saveJobData(
  db: Executor,
  names: TableNames,
  job: JobRecord,
): Promise<void> {
  await db.unsafe(
    `insert into ${names.qualified} (id, queue, task, data, attempts,
      enqueued_at, schedule_at, expected_at, state, finished_at, key,
      group_key, trace)
    values ($1::int8, $2::text, $3::text, $4::text::json, $5::int4,
      $6::timestamptz, $7::timestamptz, $8::timestamptz, 'done',
      statement_timestamp(), $9::text, $10::text, $11::text)
    on conflict (id) do update set data = excluded.data`,
    [
      job.id,
      job.queue,
      job.task,
      job.data,
      job.attempts,
      job.enqueuedAt,
      job.scheduleAt,
      job.expectedAt,
      job.key ?? null,
      job.group ?? null,
      job.trace ?? null,
    ],
    { prepare: true },
  );
}

/** How a taken job is written back (see {@linkcode storeJob}). */
export interface StoredState {
  /**
   * `ready` or `scheduled` (`delayMs` from now: a retry or a snooze),
   * `failed`, `cancelled`, or `completed` (kept with its result).
   */
  state: "ready" | "scheduled" | "failed" | "cancelled" | "completed";
  /** For `scheduled`: how long from now. */
  delayMs?: number;
  /** The error as JSON text. */
  error?: string | null;
  /** The result as JSON text (`completed`). */
  result?: string | null;
  /** The progress as JSON text. */
  progress?: string | null;
  /** The most attempts the job has (its task's `maxRetries` + 1). */
  maxAttempts?: number | null;
  /** When the attempt started. */
  startedAt?: Date | null;
}

/**
 * Writes a taken task job back in a new state, keeping its id: for a retry
 * or a snooze (ready at once, or scheduled), or as failed, cancelled or
 * completed. Inside the taking transaction, where the row is deleted.
 */
export async function storeJob(
  db: Executor,
  names: TableNames,
  job: JobRecord,
  to: StoredState,
): Promise<void> {
  await db.unsafe(
    `insert into ${names.qualified} (id, queue, task, data, attempts,
      enqueued_at, expected_at, error, state, schedule_at, finished_at,
      result, progress, max_attempts, started_at, key, group_key, trace)
    select $1::int8, $2::text, $3::text, $4::text::json, $5::int4,
      $6::timestamptz, $7::timestamptz, $8::text::json, $9::text,
      case when $9 = 'scheduled'
        then statement_timestamp() + $10::float8 * interval '1 millisecond'
        else $11::timestamptz end,
      case when $9 in ('failed', 'cancelled', 'completed')
        then statement_timestamp() end,
      $12::text::json, $13::text::json, $14::int4, $15::timestamptz,
      $16::text, $17::text, $18::text`,
    [
      job.id,
      job.queue,
      job.task,
      job.data,
      job.attempts,
      job.enqueuedAt,
      job.expectedAt,
      to.error ?? null,
      to.state,
      to.delayMs ?? null,
      job.scheduleAt,
      to.result ?? null,
      to.progress ?? null,
      to.maxAttempts ?? null,
      to.startedAt ?? null,
      job.key ?? null,
      job.group ?? null,
      job.trace ?? null,
    ],
    { prepare: true },
  );
}

/**
 * Puts a taken task job back: for a retry in `retryInMs` (ready at once when
 * 0), or as failed when `retryInMs` is null. The job keeps its id.
 */
export async function returnJob(
  db: Executor,
  names: TableNames,
  job: JobRecord,
  retryInMs: number | null,
  error: string,
): Promise<void> {
  await storeJob(db, names, job, {
    state: retryInMs === null
      ? "failed"
      : retryInMs > 0
      ? "scheduled"
      : "ready",
    delayMs: retryInMs ?? undefined,
    error,
  });
}

/**
 * The last statement of a worker's batch, sent right before its commit,
 * only when needed: consumes the cancel requests of jobs the batch stored
 * as cancelled, and tells the `waitFor()`s of jobs that ended (NOTIFY, sent
 * at commit).
 */
export async function finishBatch(
  db: Executor,
  names: TableNames,
  cancelled: readonly string[],
  ended: readonly { id: string; state: string }[],
): Promise<void> {
  await db.unsafe(
    `with consumed as (
      delete from ${names.signals}
      where relid = ${names.relid} and kind = 'cancel'
        and job_id = any($1::text::int8[])
      returning 1
    ), told as (
      select pg_notify('pq_' || ${names.relid}, 'done ' || e.id || ' ' || e.state)
      from unnest($2::text::int8[], $3::text::text[]) as e(id, state)
    )
    select (select count(*) from consumed), (select count(*) from told)`,
    [
      arrayLiteral(cancelled),
      arrayLiteral(ended.map((e) => e.id)),
      arrayLiteral(ended.map((e) => e.state)),
    ],
    { prepare: true },
  );
}

/**
 * Puts taken jobs back exactly as they were, ready: a stopping worker's
 * jobs that it took in a batch but did not start.
 */
export async function restoreJobs(
  db: Executor,
  names: TableNames,
  jobs: JobRecord[],
): Promise<void> {
  await db.unsafe(
    `insert into ${names.qualified} (id, queue, task, data, attempts,
      enqueued_at, schedule_at, expected_at, state, key, group_key, trace)
    select u.id, u.queue, u.task, u.data::json, u.attempts, u.enqueued_at,
      u.schedule_at, u.expected_at, 'ready', u.key, u.group_key, u.trace
    from unnest($1::text::int8[], $2::text::text[], $3::text::text[], $4::text::text[], $5::text::int4[],
      $6::text::timestamptz[], $7::text::timestamptz[], $8::text::timestamptz[],
      $9::text::text[], $10::text::text[], $11::text::text[])
      as u(id, queue, task, data, attempts, enqueued_at, schedule_at,
        expected_at, key, group_key, trace)`,
    [
      arrayLiteral(jobs.map((j) => j.id)),
      arrayLiteral(jobs.map((j) => j.queue)),
      arrayLiteral(jobs.map((j) => j.task)),
      arrayLiteral(jobs.map((j) => j.data)),
      arrayLiteral(jobs.map((j) => j.attempts)),
      arrayLiteral(jobs.map((j) => isoText(j.enqueuedAt))),
      arrayLiteral(jobs.map((j) => isoText(j.scheduleAt))),
      arrayLiteral(jobs.map((j) => isoText(j.expectedAt))),
      arrayLiteral(jobs.map((j) => j.key ?? null)),
      arrayLiteral(jobs.map((j) => j.group ?? null)),
      arrayLiteral(jobs.map((j) => j.trace ?? null)),
    ],
    { prepare: true },
  );
}

/** A failed job's row. */
export interface FailedRow extends JobRecord {
  failedAt: Date;
  error: string | null;
}

/** Lists failed jobs of a queue, oldest first. */
export async function listFailedJobs(
  db: Executor,
  names: TableNames,
  queue: string,
  limit: number,
): Promise<FailedRow[]> {
  const rows = await db.unsafe(
    `select id::text, task, data::text, attempts, ${epochMs("enqueued_at")},
      ${epochMs("schedule_at")}, ${epochMs("expected_at")},
      ${epochMs("finished_at")}, error::text
    from ${names.qualified}
    where queue = $1 and state = 'failed'
    order by id
    limit $2`,
    [queue, limit],
    { prepare: true },
  ).values();
  return rows.map((r) => ({
    id: r[0],
    queue,
    task: r[1],
    data: r[2],
    attempts: r[3],
    enqueuedAt: toDate(r[4])!,
    scheduleAt: toDate(r[5]),
    expectedAt: toDate(r[6]),
    failedAt: toDate(r[7])!,
    error: r[8],
  }));
}

/**
 * Puts a failed job back in its queue, ready at once with a fresh count of
 * attempts. Delete and insert rather than update, so the insert trigger
 * notifies waiting workers. Returns false when no failed job has that id.
 */
export async function retryFailedJob(
  db: Executor,
  names: TableNames,
  queue: string,
  id: string,
): Promise<boolean> {
  const t = names.qualified;
  const rows = await db.unsafe(
    `with failed as (
      delete from ${t} where id = $1::int8 and queue = $2 and state = 'failed'
      returning *
    )
    insert into ${t} (id, queue, task, data, attempts, enqueued_at,
      expected_at, state, key, group_key, trace)
    select id, queue, task, data, 0, enqueued_at, expected_at, 'ready', key,
      group_key, trace
    from failed
    returning id`,
    [id, queue],
    { prepare: true },
  ).values();
  return rows.length > 0;
}

/** Tells a `waitFor()` that a job ended (`done <id> <state>`), at once. */
export async function tellEnded(
  db: Executor,
  names: TableNames,
  id: string,
  state: string,
): Promise<void> {
  await db.unsafe(
    `select pg_notify('pq_' || ${names.relid}, 'done ' || $1 || ' ' || $2)`,
    [id, state],
  );
}
