/**
 * The job table, version 4: unique keys.
 *
 * - `key`: the job's unique key in its queue, if it was put with one.
 * - `put_keyed`: puts jobs, keyed or not, in one statement (a plpgsql
 *   function, running with the caller's rights). For each keyed job it
 *   claims the key in `pq_keys` (an insert that waits only for another
 *   producer of the same key), or locks the key's row and looks at the job
 *   holding it: still waiting (ready or scheduled) and not held by anyone,
 *   it is kept (its id returned) or replaced (its data and times, keeping
 *   its id); running, finished or gone, a new job takes the key. The holder
 *   is checked `for no key update skip locked`, so a put never waits for a
 *   worker's transaction: a job a worker holds counts as started. With a
 *   throttle, the key holds one job per period, whatever its state.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";

/** The statements of table step 4. */
export function tableV4(n: TableNames): string[] {
  const t = n.qualified;
  return [
    `alter table ${t} add column key text`,
    putKeyedFunctionSql(n, false),
  ];
}

/**
 * The `put_keyed` function. With `groups` (table step 5), an overload that
 * takes one more array, the jobs' flow-control groups; with `trace` too
 * (table step 6), one that also takes the batch's trace context. The older
 * ones stay for the processes of the previous releases during a rolling
 * deploy.
 */
export function putKeyedFunctionSql(
  n: TableNames,
  groups: boolean,
  trace = false,
): string {
  const t = n.qualified;
  const extraParams = (groups ? ", p_groups text[]" : "") +
    (trace ? ", p_trace text" : "");
  const extraColumns = (groups ? ", group_key" : "") + (trace ? ", trace" : "");
  const extraValues = (groups ? ", p_groups[i]" : "") +
    (trace ? ", p_trace" : "");
  return `create or replace function ${n.putKeyedFunction}(
      p_queue text, p_task text, p_keys text[], p_data text[],
      p_schedule_at timestamptz[], p_schedule_in float8[],
      p_expected_at timestamptz[], p_expected_in float8[],
      p_replace bool[], p_throttle_ms float8[]${extraParams}
    ) returns setof int8 language plpgsql
    set search_path = pg_catalog, pg_temp as $$
    declare
      v_key text;
      v_s timestamptz;
      v_e timestamptz;
      v_state text;
      v_period int8;
      v_holder int8;
      v_held_period int8;
      v_waiting boolean;
      v_id int8;
    begin
      for i in 1 .. coalesce(array_length(p_data, 1), 0) loop
        v_key := p_keys[i];
        v_s := coalesce(p_schedule_at[i], statement_timestamp()
          + p_schedule_in[i] * interval '1 millisecond');
        v_e := coalesce(p_expected_at[i], statement_timestamp()
          + p_expected_in[i] * interval '1 millisecond');
        v_state := case when v_s > statement_timestamp()
          then 'scheduled' else 'ready' end;
        if v_key is not null then
          v_period := floor(extract(epoch from statement_timestamp()) * 1000
            / p_throttle_ms[i]);
          insert into ${n.keys} (relid, queue, key, period)
          values (${n.relid}, p_queue, v_key, v_period)
          on conflict do nothing;
          if not found then
            select k.job_id, k.period into v_holder, v_held_period
            from ${n.keys} as k
            where k.relid = ${n.relid} and k.queue = p_queue and k.key = v_key
            for update;
            perform 1 from ${t} as j
            where j.id = v_holder and j.state in ('ready', 'scheduled')
            for no key update skip locked;
            v_waiting := found;
            if (v_period is not null and v_held_period = v_period)
              or (v_period is null and v_waiting) then
              if v_waiting and p_replace[i] then
                -- Debounce: new data and times, same id; delete and insert,
                -- so that the insert trigger tells waiting getters.
                with old as (
                  delete from ${t} where id = v_holder returning *
                )
                insert into ${t} (id, queue, task, data, attempts,
                  enqueued_at, schedule_at, expected_at, state, key${extraColumns})
                select old.id, old.queue, old.task, p_data[i]::json,
                  old.attempts, old.enqueued_at, v_s, v_e, v_state, v_key${extraValues}
                from old;
              end if;
              return next v_holder;
              continue;
            end if;
          end if;
        end if;
        insert into ${t} (queue, task, data, schedule_at, expected_at, state,
          key${extraColumns})
        values (p_queue, p_task, p_data[i]::json, v_s, v_e, v_state, v_key${extraValues})
        returning id into v_id;
        if v_key is not null then
          update ${n.keys} set job_id = v_id, period = v_period,
            updated_at = statement_timestamp()
          where relid = ${n.relid} and queue = p_queue and key = v_key;
        end if;
        return next v_id;
      end loop;
    end $$`;
}
