/**
 * Shared objects, version 1 (pq 0.1.0): `pq_waiting`, the table of queues
 * that have a waiting getter, and its two functions. Frozen: a later version
 * changes them in a step of its own.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";

/** The statements of shared step 1. */
export function sharedV1(n: TableNames): string[] {
  return [
    `create table if not exists ${n.waiting} (
      relid oid not null,
      queue text not null,
      listener text not null,
      expires_at timestamptz not null,
      primary key (relid, queue, listener)
    )`,
    `create or replace function ${n.waitFunction}(
      p_relid oid, p_queues text[], p_listener text, p_ttl_ms float8
    ) returns void language plpgsql security definer
    set search_path = pg_catalog, pg_temp as $$
    begin
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
    `create or replace function ${n.notifyFunction}() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp as $$
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
  ];
}
