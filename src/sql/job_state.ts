/**
 * Statements about one job's life: look it up, watch it, cancel it, and see
 * which running jobs were cancelled.
 *
 * Reading a job never waits for a running job's lock: `for key share skip
 * locked` tells whether a transaction holds the row for deletion (a worker
 * runs it in transaction mode, or a get() in an open transaction took it)
 * without waiting. Takers lock with `for no key update`, which a key share
 * lock does not block, so a lookup never makes a worker skip a ready job.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { arrayLiteral } from "./arrays.ts";
import { epochMs, toDate } from "./take_jobs.ts";

/** A job's row as `queue.job(id)` reads it (data still encoded). */
export interface JobRow {
  id: string;
  queue: string;
  task: string | null;
  key: string | null;
  group: string | null;
  /** The stored state; see `running`. */
  state: string;
  data: string;
  attempts: number;
  maxAttempts: number | null;
  progress: string | null;
  result: string | null;
  error: string | null;
  enqueuedAt: Date;
  scheduleAt: Date | null;
  expectedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** A transaction holds the row for deletion: a worker runs it. */
  locked: boolean;
}

/** The columns of {@linkcode JobRow}, from `j` (and `free`, the probe). */
function jobColumns(): string {
  return `j.id::text, j.queue, j.task, j.state, j.data::text, j.attempts,
    j.max_attempts, j.progress::text, j.result::text, j.error::text,
    ${epochMs("j.enqueued_at")}, ${epochMs("j.schedule_at")},
    ${epochMs("j.expected_at")}, ${epochMs("j.started_at")},
    ${epochMs("j.finished_at")}, not exists (select 1 from free), j.key,
    j.group_key`;
}

function toJobRow(row: unknown[]): JobRow {
  return {
    id: row[0] as string,
    queue: row[1] as string,
    task: row[2] as string | null,
    state: row[3] as string,
    data: row[4] as string,
    attempts: row[5] as number,
    maxAttempts: row[6] as number | null,
    progress: row[7] as string | null,
    result: row[8] as string | null,
    error: row[9] as string | null,
    enqueuedAt: toDate(row[10] as number)!,
    scheduleAt: toDate(row[11] as number | null),
    expectedAt: toDate(row[12] as number | null),
    startedAt: toDate(row[13] as number | null),
    finishedAt: toDate(row[14] as number | null),
    locked: row[15] as boolean,
    key: row[16] as string | null,
    group: row[17] as string | null,
  };
}

/**
 * Reads a job of a queue ($1 id, $2 queue); with `watch`, also registers a
 * watch on it in the same statement, so that the worker that ends it sends
 * a NOTIFY (`waitFor()`). Null when the queue has no such job.
 */
export async function readJob(
  db: Executor,
  names: TableNames,
  queue: string,
  id: string,
  watch = false,
): Promise<JobRow | null> {
  const t = names.qualified;
  // A worker that runs the job already hears of the watch by NOTIFY.
  const watchSql = watch
    ? `watched as (
        insert into ${names.signals} (relid, job_id, kind)
        values (${names.relid}, $1::int8, 'watch')
        on conflict (relid, job_id, kind)
        do update set at = statement_timestamp()
        returning 1
      ), told as (
        select pg_notify('pq_' || ${names.relid}, 'watch ' || $1)
        from watched
      ), `
    : "";
  const rows = await db.unsafe(
    `with ${watchSql}free as (
      select id from ${t} where id = $1::int8 and queue = $2
      for key share skip locked
    )
    select ${jobColumns()}${watch ? ", (select count(*) from told)" : ""}
    from ${t} as j
    where j.id = $1::int8 and j.queue = $2`,
    [id, queue],
    { prepare: true },
  ).values();
  return rows.length ? toJobRow(rows[0]) : null;
}

/** What `cancel()` found and did. */
export interface CancelResult {
  /** The state the job was in (`running` for a job a worker held), or null. */
  found: string | null;
}

/**
 * Cancels a job of a queue ($1 id, $2 queue) without waiting for any lock:
 *
 * - ready, scheduled, or running under a lease and not locked: it becomes
 *   `cancelled` at once; a lease job's worker hears it by NOTIFY (its next
 *   write is fenced out in any case);
 * - held by a transaction (a worker runs it in transaction mode, or is
 *   writing to it): a cancel request waits in `pq_signals` and a NOTIFY
 *   tells the worker, which rolls the job back and stores it cancelled; if
 *   that worker is gone, the next one to take the job does;
 * - failed: removed;
 * - finished, or no such job: nothing.
 */
export async function cancelJob(
  db: Executor,
  names: TableNames,
  queue: string,
  id: string,
): Promise<CancelResult> {
  const t = names.qualified;
  const channel = `'pq_' || ${names.relid}`;
  const rows = await db.unsafe(
    `with target as (
      select id, state from ${t} where id = $1::int8 and queue = $2
      for no key update skip locked
    ), found as (
      select id, state from ${t} where id = $1::int8 and queue = $2
    ), cancelled as (
      update ${t} as j set state = 'cancelled',
        finished_at = statement_timestamp(), lease_until = null,
        lease_token = null
      from target
      where j.id = target.id and target.state in ('ready', 'scheduled', 'running')
      returning j.id, target.state
    ), removed as (
      delete from ${t} as j using target
      where j.id = target.id and target.state = 'failed'
      returning j.id
    ), held as (
      select f.id, f.state from found as f
      where not exists (select 1 from target)
        and f.state in ('ready', 'scheduled', 'running')
    ), requested as (
      insert into ${names.signals} (relid, job_id, kind)
      select ${names.relid}, id, 'cancel' from held
      on conflict do nothing
      returning job_id
    ), told as (
      select pg_notify(${channel}, 'cancel ' || $1)
      where exists (select 1 from held)
        or exists (select 1 from cancelled where state = 'running')
      union all
      select pg_notify(${channel}, 'done ' || $1 || ' cancelled')
      where exists (select 1 from cancelled) and exists (
        select 1 from ${names.signals} as s where s.relid = ${names.relid}
          and s.job_id = $1::int8 and s.kind = 'watch')
    )
    select case
        when exists (select 1 from target)
          then (select case when state in ('ready', 'scheduled', 'running',
            'failed') then state end from target)
        when exists (select 1 from held) then (select case state
          when 'scheduled' then 'scheduled' else 'running' end from held)
      end,
      (select count(*) from requested), (select count(*) from told),
      (select count(*) from removed)`,
    [id, queue],
    { prepare: true },
  ).values();
  return { found: rows[0]?.[0] ?? null };
}

/**
 * Of the given running jobs, those that were cancelled: a cancel request
 * waits for them, or (lease jobs) their row says so. The worker's fallback
 * when no NOTIFY can reach it (behind a transaction-mode pooler).
 */
export async function cancelledAmong(
  db: Executor,
  names: TableNames,
  ids: readonly string[],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db.unsafe(
    `select job_id::text from ${names.signals}
    where relid = ${names.relid} and kind = 'cancel'
      and job_id = any($1::text::int8[])
    union
    select id::text from ${names.qualified}
    where id = any($1::text::int8[]) and state = 'cancelled'`,
    [arrayLiteral(ids)],
    { prepare: true },
  ).values();
  return rows.map((row) => row[0] as string);
}
