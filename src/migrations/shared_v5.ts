/**
 * Shared objects, version 5: flow control, one table each per schema for
 * all its pq tables (keyed by the table's oid).
 *
 * - `pq_paused`: the paused queues. A take looks here once per statement
 *   (an index probe of a table that is usually empty), so a pause holds in
 *   every process at once and survives restarts.
 * - `pq_rate_log`: the starts of rate-limited tasks, one row per start,
 *   kept for one window; `pq_rates` holds one row per task that reservations
 *   lock, so that they count and insert one at a time. `pq_rate_reserve`
 *   does both in its own statements (each sees the others' commits): a
 *   reservation is committed at once, on a connection of its own, before
 *   the job is taken, so a rate limit never holds a worker's transaction.
 *
 * Like `pq_signals`, the tables are open to PUBLIC under row-level
 * security: a role sees and changes only the rows of tables it may insert
 * into.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { sharedFunctionsV2 } from "./shared_v2.ts";
import { openToInserters } from "./shared_v4.ts";

/** The statements of shared step 5. */
export function sharedV5(n: TableNames): string[] {
  // Every statement may run again (see shared_v3.ts).
  return [
    `create table if not exists ${n.paused} (
      relid oid not null,
      queue text not null,
      paused_at timestamptz not null default statement_timestamp(),
      primary key (relid, queue)
    )`,
    ...openToInserters(n.paused, "pq_paused"),
    `create table if not exists ${n.rates} (
      relid oid not null,
      queue text not null,
      task text not null,
      primary key (relid, queue, task)
    )`,
    ...openToInserters(n.rates, "pq_rates"),
    `create table if not exists ${n.rateLog} (
      relid oid not null,
      queue text not null,
      task text not null,
      at timestamptz not null,
      id int8 generated always as identity
    )`,
    `create index if not exists pq_rate_log_task_at_idx
      on ${n.rateLog} (relid, queue, task, at)`,
    ...openToInserters(n.rateLog, "pq_rate_log"),
    // Returns 0 and the reservation's id when the task may start a job now,
    // else the milliseconds until a start leaves the window (and no id).
    // A start counts for `p_window_ms`, the window plus the worker's slack
    // between reserving and starting (see rate_limit.ts).
    `create or replace function ${n.rateReserveFunction}(
      p_relid oid, p_queue text, p_task text, p_limit int4,
      p_window_ms float8, out wait_ms float8, out reservation int8
    ) language plpgsql
    set search_path = pg_catalog, pg_temp as $$
    declare
      v_since timestamptz;
      v_count int4;
      v_oldest timestamptz;
    begin
      insert into ${n.rates} (relid, queue, task)
      values (p_relid, p_queue, p_task) on conflict do nothing;
      perform 1 from ${n.rates}
      where relid = p_relid and queue = p_queue and task = p_task
      for update;
      -- A new statement, so a new snapshot: it sees every reservation
      -- committed before this one got the lock.
      v_since := clock_timestamp() - p_window_ms * interval '1 millisecond';
      delete from ${n.rateLog}
      where relid = p_relid and queue = p_queue and task = p_task
        and at <= v_since;
      select count(*)::int4, min(at) into v_count, v_oldest
      from ${n.rateLog}
      where relid = p_relid and queue = p_queue and task = p_task;
      if v_count < p_limit then
        insert into ${n.rateLog} (relid, queue, task, at)
        values (p_relid, p_queue, p_task, clock_timestamp())
        returning id into reservation;
        wait_ms := 0;
      else
        wait_ms := greatest(1, extract(epoch from v_oldest - v_since) * 1000);
      end if;
    end $$`,
    ...sharedFunctionsV2(n, 5),
  ];
}
