/**
 * Statements of the listener: which table it listens for, which queues it
 * waits on, and the poll that finds ready jobs when no notification came.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";

/** The OID of the job table, or null when it does not exist (yet). */
export async function tableOid(
  db: Executor,
  names: TableNames,
): Promise<number | null> {
  const [row] = await db.unsafe(
    `select to_regclass($1)::oid::int8 as relid`,
    [names.qualified],
  ).values();
  return row?.[0] == null ? null : Number(row[0]);
}

/**
 * Registers this listener's interest in queues for `ttlMs` (or removes it
 * when `ttlMs` is 0). Producers notify only queues with a live registration.
 */
export async function registerWaiting(
  db: Executor,
  names: TableNames,
  relid: number,
  queues: string[],
  listener: string,
  ttlMs: number,
): Promise<void> {
  await db.unsafe(
    `select ${names.waitFunction}($1::oid, $2::text[], $3::text, $4::float8)`,
    [relid, queues, listener, ttlMs],
    { prepare: true },
  );
}

/** One kind of job of one queue that getters wait for. */
export interface LaneQuery {
  /** The queue name. */
  queue: string;
  /**
   * For task jobs (`work()`): the tasks its workers take; null for plain
   * jobs (`get()`).
   */
  tasks: readonly string[] | null;
  /** How many ready jobs are worth counting (the number of waiters). */
  cap: number;
}

/**
 * Counts ready jobs (including scheduled ones that came due) for several
 * lanes in one statement, each count capped by its number of waiters: the
 * safety-net poll costs one query per interval however many getters wait.
 * Task lanes count only the tasks their workers take, so that jobs of a task
 * no worker here knows do not wake idle slots at every poll.
 */
export async function countReady(
  db: Executor,
  names: TableNames,
  lanes: LaneQuery[],
): Promise<number[]> {
  const t = names.qualified;
  const rows = await db.unsafe(
    `select
      case when l.tasks is not null
        then (select count(*) from (select 1 from ${t}
              where queue = l.queue and state = 'ready' and task is not null
                and task = any(array(select json_array_elements_text(l.tasks)))
              limit l.cap) as x)
        else (select count(*) from (select 1 from ${t}
              where queue = l.queue and state = 'ready' and task is null
              limit l.cap) as x)
      end
      + (select count(*) from (select 1 from ${t}
         where queue = l.queue and state = 'scheduled'
           and schedule_at <= statement_timestamp()
         limit l.cap) as y)
    from unnest($1::text[], $2::json[], $3::int4[]) with ordinality
      as l(queue, tasks, cap, n)
    order by l.n`,
    [
      lanes.map((l) => l.queue),
      lanes.map((l) => l.tasks && JSON.stringify(l.tasks)),
      lanes.map((l) => l.cap),
    ],
    { prepare: true },
  ).values();
  return rows.map((row) => Number(row[0]));
}
