/**
 * Retention: removing finished jobs past their time, in small batches, by
 * one worker at a time per table.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";

/** How long finished jobs stay, in ms; null: forever. */
export interface Retention {
  /** Whether completed jobs are kept at all (else deleted at once). */
  keepCompleted: boolean;
  completed: number | null;
  failed: number | null;
  cancelled: number | null;
}

/**
 * Claims the table's prune duty until `forMs` from now, if nobody holds it
 * (a compare-and-set on `pq_meta`, pooler-safe). True if this caller won.
 */
export async function claimPruneDuty(
  db: Executor,
  names: TableNames,
  forMs: number,
): Promise<boolean> {
  const rows = await db.unsafe(
    `insert into ${names.meta} as m (relid, name, due_at)
    values (${names.relid}, 'prune',
      statement_timestamp() + $1::float8 * interval '1 millisecond')
    on conflict (relid, name) do update set due_at = excluded.due_at
    where m.due_at <= statement_timestamp()
    returning 1`,
    [forMs],
    { prepare: true },
  );
  return rows.length > 0;
}

/** Hands the duty on: the next prune is due `inMs` from now. */
export async function releasePruneDuty(
  db: Executor,
  names: TableNames,
  inMs: number,
): Promise<void> {
  await db.unsafe(
    `update ${names.meta} set due_at = statement_timestamp()
      + $1::float8 * interval '1 millisecond'
    where relid = ${names.relid} and name = 'prune'`,
    [inMs],
    { prepare: true },
  );
}

/**
 * Deletes at most `limit` finished jobs past their retention (each kind in
 * `finished_at` order, from its partial index), and old signals: watches of
 * jobs that ended or went away, and cancel requests that no running job
 * waits for any more. Returns how many jobs it deleted.
 */
export async function pruneBatch(
  db: Executor,
  names: TableNames,
  keep: Retention,
  limit: number,
): Promise<number> {
  const t = names.qualified;
  const old = (state: string, param: number) =>
    `(select id from ${t} where state = '${state}' and $${param}::float8 is not null
      and finished_at < statement_timestamp()
        - $${param}::float8 * interval '1 millisecond'
      order by finished_at limit $4)`;
  const [row] = await db.unsafe(
    `with old as (
      ${old("completed", 1)} union all ${old("failed", 2)}
      union all ${old("cancelled", 3)}
    ), removed as (
      delete from ${t} where id in (select id from old limit $4) returning 1
    ), stale as (
      delete from ${names.signals} as s
      where s.relid = ${names.relid} and s.ctid = any(array(
        select x.ctid from ${names.signals} as x
        where x.relid = ${names.relid}
          and x.at < statement_timestamp() - interval '1 minute'
          and not exists (select 1 from ${t} as j where j.id = x.job_id
            and j.state in ('ready', 'scheduled', 'running'))
        limit $4))
      returning 1
    )
    select (select count(*) from removed)::int4, (select count(*) from stale)`,
    [keep.completed, keep.failed, keep.cancelled, limit],
    { prepare: true },
  ).values();
  return row[0];
}
