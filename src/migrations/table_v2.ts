/**
 * The job table, version 2: every object of the table gets a stable name,
 * so later steps can alter or drop it by name.
 *
 * Version 1 let PostgreSQL name the indexes (`queue_queue_expected_at_id_idx`,
 * `..._idx1`, ...), which depend on what else the schema held, and cut long
 * names. This step finds each index by what it indexes (its predicate) and
 * the state check by its column, and renames them: instant, whatever the
 * table's size, so a live table keeps working while it runs.
 *
 * @module
 */

import { quoteLiteral } from "../names.ts";
import type { TableNames } from "../schema.ts";

/** The statements of table step 2. */
export function tableV2(n: TableNames): string[] {
  const o = n.objects;
  const lit = (name: string) => quoteLiteral(name);
  return [
    `do $$
    declare
      t regclass := ${lit(n.qualified)}::regclass;
      r record;
      target text;
    begin
      for r in
        select i.indexrelid::regclass as idx, c.relname,
          i.indisprimary as primary_key,
          coalesce(pg_get_expr(i.indpred, i.indrelid), '') as pred
        from pg_index as i join pg_class as c on c.oid = i.indexrelid
        where i.indrelid = t
      loop
        target := case
          when r.primary_key then ${lit(o.primaryKey)}
          when r.pred like '%''ready''%' and r.pred like '%IS NULL%'
            then ${lit(o.readyPlainIndex)}
          when r.pred like '%''ready''%' and r.pred like '%IS NOT NULL%'
            then ${lit(o.readyTaskIndex)}
          when r.pred like '%''scheduled''%' then ${lit(o.scheduledIndex)}
          when r.pred like '%''failed''%' then ${lit(o.finishedIndex)}
        end;
        if target is not null and r.relname <> target then
          execute format('alter index %s rename to %I', r.idx, target);
        end if;
      end loop;
      for r in
        select c.conname from pg_constraint as c
        where c.conrelid = t and c.contype = 'c'
          and pg_get_constraintdef(c.oid) like '%state%'
          and c.conname <> ${lit(o.stateCheck)}
      loop
        execute format('alter table %s rename constraint %I to %I',
          t, r.conname, ${lit(o.stateCheck)});
      end loop;
    end $$`,
  ];
}
