/**
 * The job table, version 5: flow control.
 *
 * - `group_key`: the job's flow-control group (a task's `group` option).
 * - `<table>_group_idx`: the live jobs of each group in the queue's order,
 *   for the check that a group is at its limit.
 * - `put_keyed` with one more array, the groups (see `table_v4.ts`).
 * - `take_limited`: takes the jobs of one task that has limits
 *   (`concurrency`, `groupConcurrency`), in either task mode.
 *
 * How `take_limited` keeps the limits exact across processes:
 *
 * - A group may start a job only when fewer than `groupConcurrency` of its
 *   jobs are running or wait ahead of it (ready or scheduled, earlier in
 *   the queue's order). With a limit of 1 that is FIFO per group: a job
 *   that waits for a retry keeps its group's turn.
 * - Transaction mode: a running job's row is deleted by a transaction that
 *   has not committed, so other takers cannot count it. Each running job
 *   holds a slot instead: a transaction-level advisory lock, tried without
 *   waiting (`pg_try_advisory_xact_lock`), one per slot of the task and of
 *   its group. The server frees it when the batch's transaction ends in any
 *   way, crash included, so no counter can drift.
 * - Lease mode: running jobs are committed rows in state `running`, so the
 *   function counts them, under a transaction-level advisory lock per task
 *   that makes claims of the task take turns (each claim is one short
 *   statement). An expired lease counts until it is taken again.
 * - Within one take, a job taken is not yet visible to the checks of the
 *   next (its row is gone in transaction mode) and an advisory lock is
 *   granted again to the transaction that holds it: the function remembers
 *   the group slots it took.
 * - A take scans at most 1,000 ready jobs of the task and skips the groups
 *   at their limit, so one busy group does not hold up the others.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { quoteIdent } from "../names.ts";
import { putKeyedFunctionSql } from "./table_v4.ts";

/** Ready jobs a limited take looks at, at most. */
export const LIMITED_SCAN = 1000;

/** The statements of table step 5. */
export function tableV5(n: TableNames): string[] {
  const t = n.qualified;
  return [
    `alter table ${t} add column group_key text`,
    `create index ${quoteIdent(n.objects.groupIndex)}
      on ${t} (queue, task, group_key, expected_at, id)
      where group_key is not null
        and state in ('ready', 'scheduled', 'running')`,
    putKeyedFunctionSql(n, true),
    takeLimitedFunctionSql(n, false),
  ];
}

/**
 * The `take_limited` function of step 5; with `trace` (table step 6), the
 * version that also returns the jobs' trace context, as a last column.
 */
export function takeLimitedFunctionSql(n: TableNames, trace: boolean): string {
  const t = n.qualified;
  const traceColumn = trace ? ", o_trace text" : "";
  const traceValue = trace ? ", j.trace" : "";
  const traceNull = trace ? ", null::text" : "";
  const columns = `j.id, j.data::text, j.enqueued_at, j.schedule_at,
        j.expected_at, j.task`;
  return `create or replace function ${n.takeLimitedFunction}(
      p_queue text, p_task text, p_limit int4, p_concurrency int4,
      p_group_concurrency int4, p_lease_ms float8, p_token int8,
      p_max_attempts int4, p_go bool
    ) returns table (o_id int8, o_data text, o_enqueued_at timestamptz,
      o_schedule_at timestamptz, o_expected_at timestamptz, o_task text,
      o_attempts int4, o_key text, o_group text, o_blocked bool${traceColumn})
    language plpgsql
    set search_path = pg_catalog, pg_temp as $$
    declare
      v_prefix text := ${n.relid}::text || '/' || p_queue || '/' || p_task;
      v_lease bool := p_lease_ms is not null;
      v_taken int4 := 0;
      v_running int4 := 0;
      v_slot int4 := 0;
      v_full text[] := '{}';
      v_held text[] := '{}';
      v_key text;
      v_blocked bool := false;
      v_grouped bool;
      v_ok bool;
      r record;
    begin
      if not p_go or exists (select 1 from ${n.paused} as p
          where p.relid = ${n.relid} and p.queue = p_queue) then
        return;
      end if;
      if v_lease then
        perform pg_advisory_xact_lock(hashtextextended('pq take ' || v_prefix, 0));
        if p_concurrency is not null then
          -- A new statement, so a new snapshot: it sees every claim
          -- committed before this one got the lock.
          select count(*) into v_running from ${t} as j
          where j.queue = p_queue and j.task = p_task and j.state = 'running';
        end if;
      end if;
      for r in
        select j.id, j.group_key, j.expected_at from ${t} as j
        where j.queue = p_queue and j.state = 'ready' and j.task = p_task
        order by j.expected_at, j.id
        limit ${LIMITED_SCAN}
      loop
        exit when v_taken >= p_limit;
        if v_lease and p_concurrency is not null
          and v_running + v_taken >= p_concurrency then
          v_blocked := true;
          exit;
        end if;
        v_grouped := r.group_key is not null
          and p_group_concurrency is not null;
        continue when v_grouped and r.group_key = any(v_full);
        if v_grouped and not v_lease then
          -- First the group's slot: a group at its limit is skipped
          -- without a look at the table.
          v_ok := false;
          for i in 0 .. p_group_concurrency - 1 loop
            -- A lock this transaction holds is granted again: skip the
            -- slots of the jobs this call took already.
            v_key := r.group_key || '/' || i;
            continue when v_key = any(v_held);
            v_ok := pg_try_advisory_xact_lock(hashtextextended(
              'pq group ' || v_prefix || '/' || v_key, 0));
            if v_ok then
              v_held := v_held || v_key;
              exit;
            end if;
          end loop;
          if not v_ok then
            v_full := v_full || r.group_key;
            v_blocked := true;
            continue;
          end if;
        end if;
        -- The row, if no other taker holds it and (in a group) fewer than
        -- the group's limit run or wait ahead of it.
        perform 1 from ${t} as j
        where j.id = r.id and j.state = 'ready' and (not v_grouped or (
          select count(*) from (
            select 1 from ${t} as e
            where e.queue = p_queue and e.task = p_task
              and e.group_key = r.group_key and e.id <> r.id
              and (e.state = 'running' or (e.state in ('ready', 'scheduled')
                and case when r.expected_at is null
                  then e.expected_at is not null or e.id < r.id
                  else e.expected_at < r.expected_at
                    or (e.expected_at = r.expected_at and e.id < r.id) end))
            limit p_group_concurrency) as ahead) < p_group_concurrency)
        for no key update skip locked;
        if not found then
          if v_grouped then
            -- Held elsewhere or behind others: the group waits its turn.
            v_full := v_full || r.group_key;
            v_blocked := true;
          end if;
          continue;
        end if;
        if not v_lease then
          if p_concurrency is not null then
            v_ok := false;
            while v_slot < p_concurrency and not v_ok loop
              v_ok := pg_try_advisory_xact_lock(hashtextextended(
                'pq slot ' || v_prefix || '/' || v_slot, 0));
              v_slot := v_slot + 1;
            end loop;
            if not v_ok then
              v_blocked := true;
              exit;
            end if;
          end if;
          return query delete from ${t} as j where j.id = r.id
            returning ${columns}, j.attempts, j.key, j.group_key, false${traceValue};
        else
          return query update ${t} as j set state = 'running',
              attempts = j.attempts + 1, started_at = statement_timestamp(),
              lease_until = statement_timestamp()
                + p_lease_ms * interval '1 millisecond',
              lease_token = p_token, max_attempts = p_max_attempts
            where j.id = r.id
            returning ${columns}, j.attempts - 1, j.key, j.group_key, false${traceValue};
        end if;
        v_taken := v_taken + 1;
      end loop;
      if v_blocked and v_taken < p_limit then
        -- Jobs wait behind a limit: the caller looks again later.
        return query select null::int8, null::text, null::timestamptz,
          null::timestamptz, null::timestamptz, null::text, null::int4,
          null::text, null::text, true${traceNull};
      end if;
    end $$`;
}
