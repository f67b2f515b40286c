/**
 * The statements of the operators' tools (the CLI and the dashboard): list
 * a queue's jobs page by page, find a job's queue by its id, list every
 * queue's schedules, and retry or delete failed jobs in bounded batches.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { epochMs, toDate } from "./take_jobs.ts";

/** Most rows one statement of a bulk action touches. */
export const BULK_BATCH = 500;

/** A job in a list: its data cut to a preview. */
export interface JobSummary {
  id: string;
  queue: string;
  task: string | null;
  key: string | null;
  /** As stored (`done` is a completed record of `job.update()`). */
  state: string;
  attempts: number;
  /** The first 200 characters of its data, as stored. */
  preview: string;
  /** The error's message, if it has one. */
  error: string | null;
  enqueuedAt: Date;
  scheduleAt: Date | null;
  finishedAt: Date | null;
}

/** What to list: a queue's jobs, after a job id (keyset paging). */
export interface JobFilter {
  queue: string;
  /** Stored states; empty or undefined: all. */
  states?: readonly string[];
  /** Only jobs with a smaller id (the last id of the previous page). */
  before?: string | null;
  /** A job id or a unique key to look for. */
  search?: string | null;
  limit: number;
}

/**
 * A page of a queue's jobs, newest first: `id < before`, so each page is
 * one index range whatever the page's depth (keyset paging, not offset).
 */
export async function listJobs(
  db: Executor,
  names: TableNames,
  f: JobFilter,
): Promise<JobSummary[]> {
  const search = f.search?.trim() || null;
  const rows = await db.unsafe(
    `select id::text, queue, task, key, state, attempts,
      left(data::text, 200), error->>'message', ${epochMs("enqueued_at")},
      ${epochMs("schedule_at")}, ${epochMs("finished_at")}
    from ${names.qualified}
    where queue = $1
      and ($2::text is null or state = any($2::text::text[]))
      and ($3::int8 is null or id < $3::int8)
      and ($4::text is null or key = $4::text
        or ($4::text ~ '^[1-9][0-9]{0,17}$' and id = $4::text::int8))
    order by id desc
    limit $5`,
    [
      f.queue,
      f.states?.length ? `{${f.states.join(",")}}` : null,
      f.before ?? null,
      search,
      f.limit,
    ],
  ).values();
  return rows.map((r) => ({
    id: r[0],
    queue: r[1],
    task: r[2],
    key: r[3],
    state: r[4],
    attempts: r[5],
    preview: r[6],
    error: r[7],
    enqueuedAt: toDate(r[8])!,
    scheduleAt: toDate(r[9]),
    finishedAt: toDate(r[10]),
  }));
}

/** The queue of a job, by its id; null when there is no such job. */
export async function queueOfJob(
  db: Executor,
  names: TableNames,
  id: string,
): Promise<string | null> {
  const rows = await db.unsafe(
    `select queue from ${names.qualified} where id = $1::int8`,
    [id],
  ).values();
  return rows.length ? rows[0][0] : null;
}

/** A schedule of any queue, arguments still encoded. */
export interface AnySchedule {
  queue: string;
  name: string;
  cron: string;
  timezone: string | null;
  task: string;
  args: string;
  paused: boolean;
  nextAt: Date;
  lastAt: Date | null;
}

/** Every schedule of the table, by queue and name. */
export async function listAllSchedules(
  db: Executor,
  names: TableNames,
): Promise<AnySchedule[]> {
  const rows = await db.unsafe(
    `select queue, name, cron, timezone, task, args, paused,
      ${epochMs("next_at")}, ${epochMs("last_at")}
    from ${names.schedules} where relid = ${names.relid}
    order by queue, name`,
  ).values();
  return rows.map((r) => ({
    queue: r[0],
    name: r[1],
    cron: r[2],
    timezone: r[3],
    task: r[4],
    args: r[5],
    paused: r[6],
    nextAt: toDate(r[7])!,
    lastAt: toDate(r[8]),
  }));
}

/**
 * Retries (`retry`) or deletes (`delete`) up to {@linkcode BULK_BATCH}
 * failed jobs of a queue (or of every queue when `queue` is null), oldest
 * first; returns how many. Retried jobs are ready at once with a fresh
 * count of attempts, keeping their ids; delete and insert rather than
 * update, so the insert trigger wakes waiting workers. Rows another
 * transaction holds are skipped, so this never waits.
 */
export async function actOnFailed(
  db: Executor,
  names: TableNames,
  action: "retry" | "delete",
  queue: string | null,
): Promise<number> {
  const t = names.qualified;
  const picked = `select id from ${t}
    where state = 'failed' and ($1::text is null or queue = $1::text)
    order by id limit ${BULK_BATCH} for update skip locked`;
  const text = action === "retry"
    ? `with failed as (
        delete from ${t} where id in (${picked}) returning *
      ), retried as (
        insert into ${t} (id, queue, task, data, attempts, enqueued_at,
          expected_at, state, key, group_key, trace)
        select id, queue, task, data, 0, enqueued_at, expected_at, 'ready', key,
          group_key, trace
        from failed
        returning 1
      )
      select count(*)::int from retried`
    : `with deleted as (delete from ${t} where id in (${picked}) returning 1)
      select count(*)::int from deleted`;
  const rows = await db.unsafe(text, [queue]).values();
  return rows[0][0];
}

/** Deletes one failed job of a queue; true if there was one. */
export async function deleteFailedJob(
  db: Executor,
  names: TableNames,
  queue: string,
  id: string,
): Promise<boolean> {
  const rows = await db.unsafe(
    `delete from ${names.qualified}
    where id = $1::int8 and queue = $2 and state = 'failed' returning 1`,
    [id, queue],
  ).values();
  return rows.length > 0;
}
