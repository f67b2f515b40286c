/**
 * Shared objects, version 4: unique keys and recurring schedules, one table
 * each per schema for all its pq tables (keyed by the table's oid).
 *
 * - `pq_keys`: which job holds each key of a queue (`put(data, { key })`).
 *   It is the arbiter of uniqueness, apart from the job table on purpose: a
 *   worker's transaction locks and deletes job rows for as long as a job
 *   runs, and a unique index over those rows would make a put of the same
 *   key wait for that transaction. Workers never touch `pq_keys`; producers
 *   of one key wait only for each other (see table step 4).
 * - `pq_schedules`: cron schedules, durable and changeable at runtime; each
 *   tick is claimed by a compare-and-set on `next_at` in the transaction
 *   that enqueues its job (see `scheduler.ts`).
 *
 * Like `pq_signals`, both are open to PUBLIC under row-level security: a
 * role sees and changes only the rows of tables it may insert into.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { sharedFunctionsV2 } from "./shared_v2.ts";

/**
 * Opens a side table keyed by `relid` to PUBLIC under row-level security: a
 * role sees and changes only the rows of the pq tables it may insert into.
 */
export function openToInserters(table: string, name: string): string[] {
  return [
    `alter table ${table} enable row level security`,
    `drop policy if exists ${name}_rows on ${table}`,
    `create policy ${name}_rows on ${table} for all
      using (coalesce(has_table_privilege(relid, 'INSERT'), false))
      with check (coalesce(has_table_privilege(relid, 'INSERT'), false))`,
    `grant select, insert, update, delete on ${table} to public`,
  ];
}

/** The statements of shared step 4. */
export function sharedV4(n: TableNames): string[] {
  // Every statement may run again (see shared_v3.ts).
  const open = openToInserters;
  return [
    `create table if not exists ${n.keys} (
      relid oid not null,
      queue text not null,
      key text not null,
      job_id int8,
      -- throttle: the period (epoch ms / throttle ms) of the job that holds it
      period int8,
      updated_at timestamptz not null default statement_timestamp(),
      primary key (relid, queue, key)
    )`,
    ...open(n.keys, "pq_keys"),
    `create table if not exists ${n.schedules} (
      relid oid not null,
      queue text not null,
      name text not null,
      cron text not null,
      timezone text,
      task text not null,
      args text not null,
      backfill_ms float8,
      paused boolean not null default false,
      next_at timestamptz not null,
      last_at timestamptz,
      updated_at timestamptz not null default statement_timestamp(),
      primary key (relid, queue, name)
    )`,
    ...open(n.schedules, "pq_schedules"),
    ...sharedFunctionsV2(n, 4),
  ];
}
