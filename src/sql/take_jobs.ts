/**
 * Taking jobs: the statement behind `get()` and the worker's claim.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";

/** A job row as taken from the table (data still encoded). */
export interface TakenRow {
  id: string;
  data: string;
  enqueuedAt: Date;
  scheduleAt: Date | null;
  expectedAt: Date | null;
  task: string | null;
  attempts: number;
}

/** What a take statement found. */
export interface TakeResult {
  /** The jobs taken, best first. */
  rows: TakenRow[];
  /**
   * Milliseconds until the earliest scheduled job of the queue comes due
   * (negative or zero: it is due now), or null when none is scheduled.
   */
  dueInMs: number | null;
  /** The server process that ran the statement (to end it if stuck). */
  pid: number;
}

/**
 * Selects a timestamp as milliseconds since 1970 (a float8, which the driver
 * reads as a number). Not as the timestamp itself: postgres.js 3.4.9 reads
 * that with `new Date(text)`, which takes the years 1 to 99 for 1901 to 1999
 * and gives an Invalid Date for the offsets with seconds that old times have
 * in many time zones (`1970-01-01 00:00:00-00:44:30` in Africa/Monrovia). A
 * worker then failed to write such a job back, retrying forever
 * (tests/bad_input_test.ts).
 */
export function epochMs(column: string): string {
  return `floor(extract(epoch from ${column}) * 1000)::float8`;
}

/** A column selected by {@linkcode epochMs} as a Date, or null. */
export function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/**
 * Builds the take statement of one lane ($1 queue), taking up to `limit`
 * jobs; with `ignoreDue`, even while scheduled jobs are due.
 *
 * Ready jobs are ordered by `expected_at` (nulls last) and then `id`, and
 * come straight from the lane's partial index. A scheduled job that came due
 * still sits in the `scheduled` index, so while one exists the statement
 * takes nothing and reports it through `due_in`: the caller promotes due jobs
 * ({@linkcode promoteDueJobs}) and takes again with `ignoreDue`, so a due job
 * competes by the same order as the others. Keeping future jobs out of the
 * ready index means a million jobs scheduled for tomorrow cost nothing to
 * skip.
 *
 * The limit and `ignoreDue` are written into the text, not bound: with a
 * bound limit PostgreSQL kept planning the statement afresh on every call
 * (a custom plan each time), 430 µs a take against 340 µs with the literal
 * (one connection, 3,000 takes, median of 6; bench/RESULTS.md). So each
 * lane has one prepared statement per limit the callers use.
 *
 * Taking deletes the row: outside a transaction the job is gone for good in
 * this one statement; inside one, a rollback brings it back.
 */
export function takeJobsSql(
  names: TableNames,
  task: boolean,
  limit: number,
  ignoreDue: boolean,
): string {
  const t = names.qualified;
  const dueCheck = ignoreDue
    ? ""
    : "and coalesce((select at from due) > statement_timestamp(), true)";
  return `with due as (
      select min(schedule_at) as at from ${t}
      where queue = $1 and state = 'scheduled'
    ), taken as (
      delete from ${t} where id = any(array(
        select id from ${t}
        where queue = $1 and state = 'ready'
          and task is ${task ? "not " : ""}null ${dueCheck}
        order by expected_at, id
        limit ${Math.trunc(limit)}
        for update skip locked
      ))
      returning id, data, enqueued_at, schedule_at, expected_at, task, attempts
    )
    select t.id::text, t.data::text, ${epochMs("t.enqueued_at")},
      ${epochMs("t.schedule_at")}, ${epochMs("t.expected_at")}, t.task,
      t.attempts,
      extract(epoch from (select at from due) - clock_timestamp()) * 1000,
      pg_backend_pid()
    from (select) as one left join taken as t on true`;
}

/** Runs a take statement built by {@linkcode takeJobsSql}. */
export async function takeJobs(
  db: Executor,
  text: string,
  queue: string,
): Promise<TakeResult> {
  const rows = await db.unsafe(text, [queue], { prepare: true }).values();
  const due = rows[0]?.[7];
  const result: TakeResult = {
    rows: [],
    dueInMs: due == null ? null : Number(due),
    pid: rows[0]?.[8],
  };
  for (const row of rows) {
    if (row[0] === null) continue;
    result.rows.push({
      id: row[0],
      data: row[1],
      enqueuedAt: toDate(row[2])!,
      scheduleAt: toDate(row[3]),
      expectedAt: toDate(row[4]),
      task: row[5],
      attempts: row[6],
    });
  }
  // `delete ... returning` gives no order; restore the queue's order.
  if (result.rows.length > 1) result.rows.sort(compareRows);
  return result;
}

function compareRows(a: TakenRow, b: TakenRow): number {
  const ea = a.expectedAt?.getTime() ?? Infinity;
  const eb = b.expectedAt?.getTime() ?? Infinity;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/**
 * Makes scheduled jobs that came due ready ($1 queue, $2 how many): the best
 * ones by the queue's order, skipping rows another promoter holds. The caller
 * takes right after, from the ready jobs and these, so the best due jobs
 * compete with the ready ones. Inside a caller's transaction, promote only
 * as many as will be taken: promoted rows stay locked until it ends.
 */
export function promoteDueJobsSql(names: TableNames): string {
  const t = names.qualified;
  return `update ${t} set state = 'ready'
    where id = any(array(
      select id from ${t}
      where queue = $1 and state = 'scheduled'
        and schedule_at <= statement_timestamp()
      order by expected_at, id
      limit $2
      for update skip locked
    ))`;
}

/** Runs the statement built by {@linkcode promoteDueJobsSql}. */
export async function promoteDueJobs(
  db: Executor,
  text: string,
  queue: string,
  limit: number,
): Promise<void> {
  await db.unsafe(text, [queue, limit], { prepare: true });
}
