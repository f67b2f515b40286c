/**
 * The take of one task that has limits (`concurrency`, `groupConcurrency`),
 * in either mode: a call of the table's `take_limited` function (see
 * `migrations/table_v5.ts` for how the limits stay exact), wrapped to
 * return the columns of every take (see `takeJobs`).
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { dueSql, epochMs, signalFlags } from "./take_jobs.ts";

/**
 * Builds the take of up to `limit` jobs of one limited task ($1 queue, $2
 * task, $3 concurrency, $4 group concurrency, $5 lease ms (null:
 * transaction mode), $6 fencing token, $7 most attempts); with
 * `ignoreDue`, even while jobs are due. Column 14 is true when jobs wait
 * behind a limit; column 15 is the job's trace context (table step 6).
 */
export function takeLimitedSql(
  names: TableNames,
  limit: number,
  ignoreDue: boolean,
): string {
  const go = ignoreDue
    ? "true"
    : "coalesce((select at from due) > statement_timestamp(), true)";
  return `with due as (${dueSql(names)})
    select t.o_id::text, t.o_data, ${epochMs("t.o_enqueued_at")},
      ${epochMs("t.o_schedule_at")}, ${epochMs("t.o_expected_at")}, t.o_task,
      t.o_attempts,
      extract(epoch from (select at from due) - clock_timestamp()) * 1000,
      pg_backend_pid(), true, ${signalFlags(names, "t.o_id")}, t.o_key,
      t.o_group, t.o_blocked, t.o_trace
    from (select) as one left join lateral ${names.takeLimitedFunction}(
      $1::text, $2::text, ${Math.trunc(limit)}, $3::int4, $4::int4,
      $5::float8, $6::int8, $7::int4, ${go}) as t on true`;
}
