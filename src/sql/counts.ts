/**
 * The statements of `pq_counts` (shared step 6): add a worker's counts of
 * finished jobs per minute, and read the last hour's.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { arrayLiteral } from "./arrays.ts";

/** Counts are kept this long (the charts show the last hour). */
export const KEEP_COUNTS = "2 hours";

/** One (queue, task, minute) of counts. */
export interface CountRow {
  queue: string;
  task: string;
  /** The minute's start, in epoch milliseconds. */
  minute: number;
  completed: number;
  failed: number;
  retried: number;
}

/**
 * Adds counts (one upsert for all of them) and deletes the table's counts
 * older than {@linkcode KEEP_COUNTS}. The rows must be sorted by key, so
 * that two workers flushing at once lock the rows they share in the same
 * order and cannot deadlock.
 */
export async function addCounts(
  db: Executor,
  names: TableNames,
  rows: readonly CountRow[],
): Promise<void> {
  const t = names.counts;
  await db.unsafe(
    `with added as (
      insert into ${t} as c (relid, queue, task, minute, completed, failed,
        retried)
      select ${names.relid}, u.queue, u.task,
        to_timestamp(u.minute / 1000.0), u.completed, u.failed, u.retried
      from unnest($1::text::text[], $2::text::text[], $3::text::int8[],
        $4::text::int8[], $5::text::int8[], $6::text::int8[])
        as u(queue, task, minute, completed, failed, retried)
      on conflict (relid, queue, task, minute) do update set
        completed = c.completed + excluded.completed,
        failed = c.failed + excluded.failed,
        retried = c.retried + excluded.retried
      returning 1
    ), expired as (
      delete from ${t} where relid = ${names.relid}
        and minute < statement_timestamp() - interval '${KEEP_COUNTS}'
      returning 1
    )
    select (select count(*) from added), (select count(*) from expired)`,
    [
      arrayLiteral(rows.map((r) => r.queue)),
      arrayLiteral(rows.map((r) => r.task)),
      arrayLiteral(rows.map((r) => r.minute)),
      arrayLiteral(rows.map((r) => r.completed)),
      arrayLiteral(rows.map((r) => r.failed)),
      arrayLiteral(rows.map((r) => r.retried)),
    ],
    { prepare: true },
  );
}

/**
 * The counts of the last `minutes` minutes (the current one included), of
 * every queue and task of the table.
 */
export async function readCounts(
  db: Executor,
  names: TableNames,
  minutes: number,
): Promise<CountRow[]> {
  const rows = await db.unsafe(
    `select queue, task, (extract(epoch from minute) * 1000)::float8,
      completed::float8, failed::float8, retried::float8
    from ${names.counts}
    where relid = ${names.relid} and minute >= date_trunc('minute',
      statement_timestamp()) - ($1::int4 - 1) * interval '1 minute'`,
    [minutes],
    { prepare: true },
  ).values();
  return rows.map((r) => ({
    queue: r[0],
    task: r[1],
    minute: r[2],
    completed: r[3],
    failed: r[4],
    retried: r[5],
  }));
}
