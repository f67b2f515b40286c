/**
 * Pausing a queue: a row in `pq_paused` (see `migrations/shared_v5.ts`),
 * which every take checks. Resuming deletes it and wakes every waiting
 * taker of the queue, in every process.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";

/** Pauses a queue; true if it was running. */
export async function pauseQueue(
  db: Executor,
  names: TableNames,
  queue: string,
): Promise<boolean> {
  const rows = await db.unsafe(
    `insert into ${names.paused} (relid, queue)
    values (${names.relid}, $1::text) on conflict do nothing
    returning 1`,
    [queue],
  ).values();
  return rows.length > 0;
}

/**
 * Resumes a queue; true if it was paused. The wake uses the format of a
 * put's notification, with counts large enough to wake every waiter.
 */
export async function resumeQueue(
  db: Executor,
  names: TableNames,
  queue: string,
): Promise<boolean> {
  const rows = await db.unsafe(
    `with resumed as (
      delete from ${names.paused}
      where relid = ${names.relid} and queue = $1::text
      returning queue
    )
    select pg_notify('pq_' || ${names.relid},
      '1000000 1000000 0 ' || queue)
    from resumed`,
    [queue],
  ).values();
  return rows.length > 0;
}

/** Whether a queue is paused. */
export async function isPaused(
  db: Executor,
  names: TableNames,
  queue: string,
): Promise<boolean> {
  const rows = await db.unsafe(
    `select 1 from ${names.paused}
    where relid = ${names.relid} and queue = $1::text`,
    [queue],
  ).values();
  return rows.length > 0;
}

/**
 * Wakes `count` waiting task takers of a queue in every process (slots of
 * a limited task freed).
 */
export async function wakeTaskTakers(
  db: Executor,
  names: TableNames,
  queue: string,
  count: number,
): Promise<void> {
  await db.unsafe(
    `select pg_notify('pq_' || ${names.relid}, '0 ' || $2::int4 || ' 0 ' || $1::text)`,
    [queue, count],
  );
}

/** A paused queue and when it was paused. */
export interface PausedQueue {
  queue: string;
  pausedAt: Date;
}

/**
 * Every paused queue of the table, by name. One probe of the primary key's
 * `relid` prefix in a table that holds only paused queues, so the
 * dashboard's overview can afford it on every load.
 */
export async function listPaused(
  db: Executor,
  names: TableNames,
): Promise<PausedQueue[]> {
  const rows = await db.unsafe(
    `select queue, paused_at from ${names.paused}
    where relid = ${names.relid} order by queue`,
  );
  return rows.map((r) => ({
    queue: r.queue as string,
    pausedAt: r.paused_at as Date,
  }));
}
