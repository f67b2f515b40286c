/**
 * Rate limits: a reservation per start, committed at once on a connection
 * of pq's own (see `migrations/shared_v5.ts`), and its release when the
 * job it was for could not start.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";

/** What a reservation got. */
export type Reservation =
  /** A start: `id` names it, to give it back unused. */
  | { id: string; waitMs: 0 }
  /** No start now: the next frees in `waitMs`. */
  | { id: null; waitMs: number };

/**
 * Reserves one start of a task, counting the starts of the last
 * `windowMs`.
 */
export async function reserveStart(
  db: Executor,
  names: TableNames,
  queue: string,
  task: string,
  limit: number,
  windowMs: number,
): Promise<Reservation> {
  const [row] = await db.unsafe(
    `select wait_ms, reservation::text
    from ${names.rateReserveFunction}(${names.relid}, $1::text, $2::text,
      $3::int4, $4::float8)`,
    [queue, task, limit, windowMs],
    { prepare: true },
  ).values();
  return row[1] === null
    ? { id: null, waitMs: Number(row[0]) }
    : { id: row[1], waitMs: 0 };
}

/** Gives back a start that was not used. */
export async function releaseStart(
  db: Executor,
  names: TableNames,
  id: string,
): Promise<void> {
  await db.unsafe(
    `delete from ${names.rateLog} where id = $1::int8`,
    [id],
    { prepare: true },
  );
}
