/**
 * Shared objects, version 2: nobody registers waits on a table they cannot
 * read.
 *
 * `pq_wait` runs as its owner (`security definer`), so that a role with only
 * select, insert, update and delete on a job table can register its waits
 * without rights on `pq_waiting`. In version 1 it did so for any table: any
 * role with usage on the schema could register waits on every pq table and
 * bring back a NOTIFY on every insert. Now it checks the calling role's
 * SELECT privilege on the table first: the role the session acts as (`SET
 * ROLE`), else the session's user; inside the function `current_user` is
 * the owner, so it cannot say who called. `pq_notify` is a trigger function
 * that nobody needs to call: EXECUTE is revoked from PUBLIC.
 *
 * Each body carries its version in a comment, which `create()` reads (see
 * `schema.ts`): a pq 0.1.0 that runs `create()` again replaces the bodies
 * with its own and the marker with them, and the next `create()` of this
 * version restores them.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";

/** The statements of shared step 2. */
export function sharedV2(n: TableNames): string[] {
  return [
    `create or replace function ${n.waitFunction}(
      p_relid oid, p_queues text[], p_listener text, p_ttl_ms float8
    ) returns void language plpgsql security definer
    set search_path = pg_catalog, pg_temp as $$
    -- pq shared version 2
    declare
      caller name := coalesce(
        nullif(current_setting('role'), 'none')::name, session_user);
    begin
      if not coalesce(has_table_privilege(caller, p_relid, 'SELECT'), false)
      then
        raise exception 'permission denied: role % cannot read the table with oid %',
          caller, p_relid using errcode = '42501';
      end if;
      delete from ${n.waiting}
      where expires_at < statement_timestamp() - interval '1 minute'
         or (p_ttl_ms <= 0 and relid = p_relid and listener = p_listener
             and queue = any(p_queues));
      if p_ttl_ms > 0 then
        insert into ${n.waiting} (relid, queue, listener, expires_at)
        select p_relid, q, p_listener,
               statement_timestamp() + p_ttl_ms * interval '1 millisecond'
        from unnest(p_queues) as q
        on conflict (relid, queue, listener)
        do update set expires_at = excluded.expires_at;
      end if;
    end $$`,
    // One notification per queue and statement, and only when a listener
    // waits on that queue: a NOTIFY takes a database-wide lock at commit that
    // serializes all notifying transactions (bench/RESULTS.md). The payload is
    // "<ready plain> <ready task> <scheduled> <queue>".
    `create or replace function ${n.notifyFunction}() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp as $$
    -- pq shared version 2
    declare
      r record;
    begin
      -- Most inserts find nobody waiting on the table at all: stop there.
      if not exists (
        select 1 from ${n.waiting} as w
        where w.relid = tg_relid and w.expires_at > statement_timestamp()
      ) then
        return null;
      end if;
      for r in
        select j.queue,
               count(*) filter (where j.state = 'ready' and j.task is null) as plain,
               count(*) filter (where j.state = 'ready' and j.task is not null) as tasks,
               count(*) filter (where j.state = 'scheduled') as scheduled
        from new_rows as j
        where j.state in ('ready', 'scheduled')
        group by j.queue
      loop
        if exists (
          select 1 from ${n.waiting} as w
          where w.relid = tg_relid and w.queue = r.queue
            and w.expires_at > statement_timestamp()
        ) then
          perform pg_notify(
            'pq_' || tg_relid,
            r.plain || ' ' || r.tasks || ' ' || r.scheduled || ' ' || r.queue
          );
        end if;
      end loop;
      return null;
    end $$`,
    `revoke execute on function ${n.notifyFunction}() from public`,
  ];
}
