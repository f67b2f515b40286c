/**
 * The statements of schedules (`pq_schedules`, shared step 4): store, list,
 * remove and pause them; find the due ones; claim a tick.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { epochMs, toDate } from "./take_jobs.ts";

/** A stored schedule. */
export interface ScheduleRow {
  name: string;
  cron: string;
  timezone: string | null;
  task: string;
  /** The task's argument, encoded. */
  args: string;
  backfillMs: number | null;
  paused: boolean;
  nextAt: Date;
  lastAt: Date | null;
  updatedAt: Date;
}

const COLUMNS = `name, cron, timezone, task, args, backfill_ms, paused,
  ${epochMs("next_at")}, ${epochMs("last_at")}, ${epochMs("updated_at")}::text`;

function toRow(row: unknown[]): ScheduleRow {
  return {
    name: row[0] as string,
    cron: row[1] as string,
    timezone: row[2] as string | null,
    task: row[3] as string,
    args: row[4] as string,
    backfillMs: row[5] as number | null,
    paused: row[6] as boolean,
    nextAt: toDate(row[7] as number)!,
    lastAt: toDate(row[8] as number | null),
    updatedAt: toDate(Number(row[9]))!,
  };
}

/** What `schedule()` stores. */
export interface ScheduleInput {
  name: string;
  cron: string;
  timezone: string | null;
  task: string;
  args: string;
  backfillMs: number | null;
  /** Undefined: keep the stored value (false for a new schedule). */
  paused: boolean | undefined;
  /** The next tick from now, used when the schedule is new or changed. */
  nextAt: Date;
}

/**
 * Creates or updates a schedule. An unchanged one (same cron, time zone,
 * task, arguments and backfill) keeps its next and last ticks, so that every
 * process may call this at every start without skipping or repeating a
 * tick; a changed one starts from `nextAt`. Tells running workers (NOTIFY
 * `schedule <queue>`).
 */
export async function upsertSchedule(
  db: Executor,
  names: TableNames,
  queue: string,
  s: ScheduleInput,
): Promise<void> {
  const t = names.schedules;
  await db.unsafe(
    `with saved as (
      insert into ${t} as s (relid, queue, name, cron, timezone, task, args,
        backfill_ms, paused, next_at)
      values (${names.relid}, $1, $2, $3, $4, $5, $6, $7::float8,
        coalesce($8::bool, false), $9::timestamptz)
      on conflict (relid, queue, name) do update set
        cron = excluded.cron, timezone = excluded.timezone,
        task = excluded.task, args = excluded.args,
        backfill_ms = excluded.backfill_ms,
        paused = coalesce($8::bool, s.paused),
        next_at = case when (s.cron, s.timezone, s.task, s.args, s.backfill_ms)
            is not distinct from (excluded.cron, excluded.timezone,
              excluded.task, excluded.args, excluded.backfill_ms)
          then s.next_at else excluded.next_at end,
        updated_at = statement_timestamp()
      returning 1
    )
    select pg_notify('pq_' || ${names.relid}, 'schedule ' || $1)
    from saved`,
    [
      queue,
      s.name,
      s.cron,
      s.timezone,
      s.task,
      s.args,
      s.backfillMs,
      s.paused ?? null,
      s.nextAt,
    ],
    { prepare: true },
  );
}

/** The schedules of a queue, by name. */
export async function listSchedules(
  db: Executor,
  names: TableNames,
  queue: string,
): Promise<ScheduleRow[]> {
  const rows = await db.unsafe(
    `select ${COLUMNS} from ${names.schedules}
    where relid = ${names.relid} and queue = $1 order by name`,
    [queue],
    { prepare: true },
  ).values();
  return rows.map(toRow);
}

/** Removes a schedule; true if it existed. */
export async function deleteSchedule(
  db: Executor,
  names: TableNames,
  queue: string,
  name: string,
): Promise<boolean> {
  const rows = await db.unsafe(
    `delete from ${names.schedules}
    where relid = ${names.relid} and queue = $1 and name = $2 returning 1`,
    [queue, name],
    { prepare: true },
  );
  return rows.length > 0;
}

/**
 * Pauses or resumes a schedule; true if it exists. A resumed schedule
 * starts again from `nextAt` (the ticks of the pause are skipped).
 */
export async function pauseSchedule(
  db: Executor,
  names: TableNames,
  queue: string,
  name: string,
  paused: boolean,
  nextAt: (cron: string, timezone: string | null) => Promise<Date>,
): Promise<boolean> {
  const [row] = await db.unsafe(
    `select cron, timezone, paused from ${names.schedules}
    where relid = ${names.relid} and queue = $1 and name = $2`,
    [queue, name],
  );
  if (!row) return false;
  if (row.paused === paused) return true;
  const next = paused ? null : await nextAt(row.cron, row.timezone);
  await db.unsafe(
    `with changed as (
      update ${names.schedules} set paused = $3,
        next_at = coalesce($4::timestamptz, next_at),
        updated_at = statement_timestamp()
      where relid = ${names.relid} and queue = $1 and name = $2
      returning 1
    )
    select pg_notify('pq_' || ${names.relid}, 'schedule ' || $1)
    from changed`,
    [queue, name, paused, next],
  );
  return true;
}

/** What a scheduler reads when it wakes. */
export interface DueSchedules {
  /** The due schedules (next tick at or before the server's now). */
  due: ScheduleRow[];
  /** Milliseconds until the next tick of the others; null: none. */
  nextInMs: number | null;
  /** The server's clock. */
  now: Date;
}

/**
 * The due schedules of a queue (at most `limit`), and when the next of the
 * others comes due, by the server's clock: one statement per wake.
 */
export async function dueSchedules(
  db: Executor,
  names: TableNames,
  queue: string,
  limit: number,
): Promise<DueSchedules> {
  const t = names.schedules;
  const rows = await db.unsafe(
    `select ${COLUMNS}, ${epochMs("statement_timestamp()")},
      extract(epoch from (select min(next_at) from ${t}
        where relid = ${names.relid} and queue = $1 and not paused
          and next_at > statement_timestamp()) - statement_timestamp()) * 1000
    from (select) as one left join lateral (
      select * from ${t}
      where relid = ${names.relid} and queue = $1 and not paused
        and next_at <= statement_timestamp()
      order by next_at limit $2
    ) as s on true`,
    [queue, limit],
    { prepare: true },
  ).values();
  const first = rows[0];
  return {
    due: rows.filter((row) => row[0] !== null).map(toRow),
    nextInMs: first?.[11] == null ? null : Number(first[11]),
    now: toDate(first[10] as number)!,
  };
}

/**
 * Claims a schedule's due ticks: moves its next tick on, if nobody did
 * since it was read (a compare-and-set on `next_at` and `updated_at`).
 * Run it in the transaction that enqueues the ticks' jobs. True if won.
 */
export async function claimTicks(
  db: Executor,
  names: TableNames,
  queue: string,
  seen: ScheduleRow,
  lastTick: Date | null,
  nextAt: Date,
): Promise<boolean> {
  const rows = await db.unsafe(
    `update ${names.schedules} set next_at = $5::timestamptz,
      last_at = $4::timestamptz
    where relid = ${names.relid} and queue = $1 and name = $2
      and next_at = $3::timestamptz and not paused
      and ${epochMs("updated_at")}::text = $6
    returning 1`,
    [
      queue,
      seen.name,
      seen.nextAt,
      lastTick,
      nextAt,
      String(seen.updatedAt.getTime()),
    ],
    { prepare: true },
  );
  return rows.length > 0;
}
