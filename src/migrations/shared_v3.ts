/**
 * Shared objects, version 3: the job lifecycle's side tables, one per
 * schema for all its pq tables (keyed by the table's oid, like
 * `pq_waiting`).
 *
 * - `pq_signals`: requests that reach a running job: `cancel` (a job that a
 *   worker's transaction holds cannot be changed without waiting for it, so
 *   the request waits here) and `watch` (a `waitFor()` that wants a NOTIFY
 *   when the job ends).
 * - `pq_meta`: one row per maintenance duty of a table (`prune`), claimed
 *   with a compare-and-set on `due_at`, so one worker at a time runs it,
 *   without leader election or session locks (pooler-safe).
 *
 * A role that may use a job table needs no grant on these: they are open to
 * PUBLIC, and row-level security lets a role see and change only the rows
 * of tables it may update (`has_table_privilege` runs as the calling role).
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { sharedFunctionsV2 } from "./shared_v2.ts";

/** The statements of shared step 3. */
export function sharedV3(n: TableNames): string[] {
  // Every statement may run again: the version is read from the function
  // bodies, which an older pq's create() replaces (see schema.ts).
  const open = (table: string, name: string) => [
    `alter table ${table} enable row level security`,
    `drop policy if exists ${name}_rows on ${table}`,
    `create policy ${name}_rows on ${table} for all
      using (coalesce(has_table_privilege(relid, 'UPDATE'), false))
      with check (coalesce(has_table_privilege(relid, 'UPDATE'), false))`,
    `grant select, insert, update, delete on ${table} to public`,
  ];
  return [
    `create table if not exists ${n.signals} (
      relid oid not null,
      job_id int8 not null,
      kind text not null check (kind in ('cancel', 'watch')),
      at timestamptz not null default statement_timestamp(),
      primary key (relid, job_id, kind)
    )`,
    ...open(n.signals, "pq_signals"),
    `create table if not exists ${n.meta} (
      relid oid not null,
      name text not null,
      due_at timestamptz not null default '-infinity',
      primary key (relid, name)
    )`,
    ...open(n.meta, "pq_meta"),
    // The version lives in the function bodies: stamp them with 3.
    ...sharedFunctionsV2(n, 3),
  ];
}
