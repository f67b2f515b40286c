/**
 * Shared objects, version 6: `pq_counts`, jobs completed, failed and
 * retried per minute, by table, queue and task, for the charts of
 * `pq.stats()` and the dashboard.
 *
 * Workers add to it in batches (see `counters.ts`): one upsert every few
 * seconds per worker, never a write per job. Each flush also deletes the
 * table's rows older than two hours, so it holds at most queues x tasks x
 * 120 rows per job table, whatever the traffic: charts need no history of
 * jobs, and keeping completed jobs (`keep.completed`) stays optional.
 *
 * Open to PUBLIC under row-level security, like `pq_keys`, with one
 * difference: a role that may only read a job table (a dashboard's) may
 * read its counts; writing them needs INSERT on the table, as workers have.
 *
 * Self-contained on purpose: every statement may run again (the version is
 * read from the function bodies, see `schema.ts`), and nothing here depends
 * on the other steps but the function bodies of step 2.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { sharedFunctionsV2 } from "./shared_v2.ts";

/** The statements of shared step 6. */
export function sharedV6(n: TableNames): string[] {
  const t = n.counts;
  const can = (privilege: string) =>
    `coalesce(has_table_privilege(relid, '${privilege}'), false)`;
  return [
    `create table if not exists ${t} (
      relid oid not null,
      queue text not null,
      task text not null,
      minute timestamptz not null,
      completed int8 not null default 0,
      failed int8 not null default 0,
      retried int8 not null default 0,
      primary key (relid, queue, task, minute)
    )`,
    `alter table ${t} enable row level security`,
    `drop policy if exists pq_counts_read on ${t}`,
    `create policy pq_counts_read on ${t} for select using (${can("SELECT")})`,
    `drop policy if exists pq_counts_write on ${t}`,
    `create policy pq_counts_write on ${t} for insert with check (${
      can("INSERT")
    })`,
    `drop policy if exists pq_counts_update on ${t}`,
    `create policy pq_counts_update on ${t} for update
      using (${can("INSERT")}) with check (${can("INSERT")})`,
    `drop policy if exists pq_counts_delete on ${t}`,
    `create policy pq_counts_delete on ${t} for delete using (${
      can("INSERT")
    })`,
    `grant select, insert, update, delete on ${t} to public`,
    ...sharedFunctionsV2(n, 6),
  ];
}
