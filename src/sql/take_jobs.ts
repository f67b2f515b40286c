/**
 * Taking jobs: the statement behind `get()` and the worker's claim.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import { noteReachable } from "../reconnect_backoff.ts";
import { pickReadySql } from "./pick_ready.ts";
import type { Executor } from "../types.ts";

/** A job row as taken from the table (data still encoded). */
export interface TakenRow {
  id: string;
  data: string;
  /** A cancel request waits for this job (see `pq_signals`). */
  cancelRequested: boolean;
  /** A `waitFor()` wants to hear when this job ends. */
  watched: boolean;
  enqueuedAt: Date;
  scheduleAt: Date | null;
  expectedAt: Date | null;
  task: string | null;
  attempts: number;
  /** Its unique key, if it was put with one. */
  key: string | null;
  /** Its flow-control group, if it has one. */
  group: string | null;
  /** The `traceparent` of the put that made it (see `telemetry.ts`). */
  trace: string | null;
}

/** What a take statement found. */
export interface TakeResult {
  /** The jobs taken, best first. */
  rows: TakenRow[];
  /**
   * Milliseconds until the earliest scheduled job of the queue comes due
   * (negative or zero: it is due now), or null when none is scheduled.
   */
  dueInMs: number | null;
  /** The server process that ran the statement (to end it if stuck). */
  pid: number;
}

/**
 * Selects a timestamp as milliseconds since 1970 (a float8, which the driver
 * reads as a number). Not as the timestamp itself: postgres.js 3.4.9 reads
 * that with `new Date(text)`, which takes the years 1 to 99 for 1901 to 1999
 * and gives an Invalid Date for the offsets with seconds that old times have
 * in many time zones (`1970-01-01 00:00:00-00:44:30` in Africa/Monrovia). A
 * worker then failed to write such a job back, retrying forever
 * (tests/bad_input_test.ts).
 */
export function epochMs(column: string): string {
  return `floor(extract(epoch from ${column}) * 1000)::float8`;
}

/** A column selected by {@linkcode epochMs} as a Date, or null. */
export function toDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/**
 * The check that a statement runs inside the transaction a queue is bound to
 * ($n: the binding's mark, see `binding.ts`). The binding marks the
 * transaction with a transaction-local setting when it is made; the setting
 * ends with the transaction, so a statement sent after it ended (on its own,
 * or inside another transaction of the same connection) finds no mark.
 */
export function boundTransactionCheck(param: number): string {
  return `(strpos(current_setting('pq.bound', true), \$${param}) > 0)`;
}

/** How a take statement is built. */
export interface TakeShape {
  /** Task jobs ($2: the task names to take) rather than plain jobs. */
  task: boolean;
  /** How many jobs at most (written into the text). */
  limit: number;
  /** Take even while scheduled jobs are due (after promoting them). */
  ignoreDue: boolean;
  /** Plain jobs for a queue bound to a transaction ($2: its mark). */
  bound: boolean;
  /**
   * Start past the lane's low-water marks (see `take_marks.ts`), bound
   * after the other parameters (see {@linkcode markParamOf}).
   */
  marked: boolean;
}

/** Where a take's marks are bound: after the queue and the lane's own. */
export function markParamOf(shape: TakeShape): number {
  return shape.task || shape.bound ? 3 : 2;
}

/**
 * Builds the take statement of one lane ($1 queue), taking up to `limit`
 * jobs; with `ignoreDue`, even while scheduled jobs are due.
 *
 * Ready jobs are ordered by `expected_at` (nulls last) and then `id`, and
 * come straight from the lane's partial index. A scheduled job that came due
 * still sits in the `scheduled` index, so while one exists the statement
 * takes nothing and reports it through `due_in`: the caller promotes due jobs
 * ({@linkcode promoteDueJobs}) and takes again with `ignoreDue`, so a due job
 * competes by the same order as the others. Keeping future jobs out of the
 * ready index means a million jobs scheduled for tomorrow cost nothing to
 * skip.
 *
 * A worker takes only the tasks it has registered (`task = any($2)`): during
 * a rolling deploy, a worker of the old code must leave the jobs of a new
 * task to the workers that know it, instead of failing them. Jobs of tasks
 * nobody takes are skipped by a filter on the index scan (a few microseconds
 * each), and stay ready.
 *
 * The limit and `ignoreDue` are written into the text, not bound: with a
 * bound limit PostgreSQL kept planning the statement afresh on every call
 * (a custom plan each time), 430 µs a take against 340 µs with the literal
 * (one connection, 3,000 takes, median of 6; bench/RESULTS.md). So each
 * lane has one prepared statement per limit the callers use.
 *
 * Taking deletes the row: outside a transaction the job is gone for good in
 * this one statement; inside one, a rollback brings it back. The rows are
 * picked `for no key update skip locked`: takers skip each other's rows, and
 * a `queue.job(id)` lookup (a key share lock, see `job_state.ts`) never
 * makes a taker skip a ready job, which would then wait for the next poll.
 */
export function takeJobsSql(names: TableNames, shape: TakeShape): string {
  const t = names.qualified;
  const dueCheck = shape.ignoreDue
    ? ""
    : "and coalesce((select at from due) > statement_timestamp(), true)";
  const which = shape.task
    ? "task is not null and task = any($2::text::text[])"
    : "task is null";
  const bound = shape.bound ? `and ${boundTransactionCheck(2)}` : "";
  const check = shape.bound ? boundTransactionCheck(2) : "true";
  const pick = pickReadySql(names, {
    where: `${which} ${dueCheck} ${bound} and ${pausedCheck(names)}`,
    limit: shape.limit,
    markParam: shape.marked ? markParamOf(shape) : null,
  });
  return `with due as (${dueCte(names, shape.marked)}), ${pick.ctes} taken as (
      delete from ${t} where id = any(${pick.ids})
      returning id, data, enqueued_at, schedule_at, expected_at, task, attempts,
        key, group_key, trace
    )
    select t.id::text, t.data::text, ${epochMs("t.enqueued_at")},
      ${epochMs("t.schedule_at")}, ${epochMs("t.expected_at")}, t.task,
      t.attempts,
      extract(epoch from (select at from due) - clock_timestamp()) * 1000,
      pg_backend_pid(), ${check}, ${signalFlags(names, "t.id")}, t.key,
      t.group_key, false, t.trace, ${WALK_MS}
    from (select) as one left join taken as t on true`;
}

/**
 * How long the statement ran on the server before its rows came out, in ms:
 * a take that walks thousands of dead index entries shows it here, apart
 * from the network and the client (see `take_marks.ts`).
 */
export const WALK_MS =
  "extract(epoch from clock_timestamp() - statement_timestamp()) * 1000";

/**
 * True unless the queue ($1) is paused: one probe of `pq_paused`, run once
 * per statement (it does not depend on the row).
 */
export function pausedCheck(names: TableNames): string {
  return `not exists (select 1 from ${names.paused} as p
    where p.relid = ${names.relid} and p.queue = $1)`;
}

/**
 * When the queue's next job comes due ($1 queue): its earliest scheduled job,
 * or its earliest lease to end (a lease job whose worker died is taken again
 * then). Both come from small partial indexes.
 */
export function dueSql(names: TableNames): string {
  const t = names.qualified;
  return `select least(
      (select min(schedule_at) from ${t}
        where queue = $1 and state = 'scheduled'),
      (select min(lease_until) from ${t}
        where queue = $1 and state = 'running')) as at`;
}

/**
 * The `due` of a take: {@linkcode dueSql}, or none (null) for a take that
 * starts past its lane's low-water marks. Those run while a pinned horizon
 * keeps the entry of every job taken since in the indexes (see
 * `take_marks.ts`), and the scheduled and running indexes then hold one for
 * each job promoted or claimed with a lease since: `min()` walks them from
 * the start, one buffer visit per job, on every take (bench/RESULTS.md,
 * pressure, lease mode). The one take a second from the start still looks,
 * so a job that came due, or a lease that ended, waits at most about a
 * second more.
 */
export function dueCte(names: TableNames, marked: boolean): string {
  return marked ? "select null::timestamptz as at" : dueSql(names);
}

/**
 * Two booleans for a taken job (`id`: its id): a cancel request waits for it,
 * and a `waitFor()` watches it. Two probes of `pq_signals`'s primary key,
 * usually empty.
 */
export function signalFlags(names: TableNames, id: string): string {
  const probe = (kind: string) =>
    `exists (select 1 from ${names.signals} as s where s.relid = ${names.relid}
      and s.job_id = ${id} and s.kind = '${kind}')`;
  return `${probe("cancel")}, ${probe("watch")}`;
}

/** What a take statement found. */
export interface TakeResult {
  /** The jobs taken, best first. */
  rows: TakenRow[];
  /**
   * Milliseconds until the earliest scheduled job of the queue comes due
   * (negative or zero: it is due now), or null when none is scheduled.
   */
  dueInMs: number | null;
  /** The server process that ran the statement (to end it if stuck). */
  pid: number;
  /** False when a bound queue's transaction had ended: nothing was taken. */
  inTransaction: boolean;
  /** Ready jobs wait behind a task's limits (see `take_limited.ts`). */
  blocked: boolean;
  /** Milliseconds the statement ran on the server (see `WALK_MS`). */
  walkMs: number;
}

/**
 * Runs a take statement built by {@linkcode takeJobsSql}.
 *
 * @param rest The parameters after the queue: the task names of a task
 * lane, the mark of the transaction a plain lane is bound to, or a lease
 * claim's.
 */
export async function takeJobs(
  db: Executor,
  text: string,
  queue: string,
  rest: readonly unknown[] = [],
): Promise<TakeResult> {
  const params = [queue, ...rest];
  const rows = await db.unsafe(text, params as never[], { prepare: true })
    .values();
  noteReachable(db);
  const first = rows[0];
  const due = first?.[7];
  const result: TakeResult = {
    rows: [],
    dueInMs: due == null ? null : Number(due),
    pid: first?.[8],
    inTransaction: first?.[9] !== false,
    blocked: false,
    walkMs: Number(first?.[16] ?? 0),
  };
  for (const row of rows) {
    if (row[14] === true) result.blocked = true;
    if (row[0] === null) continue;
    result.rows.push({
      id: row[0],
      data: row[1],
      cancelRequested: row[10] === true,
      watched: row[11] === true,
      enqueuedAt: toDate(row[2])!,
      scheduleAt: toDate(row[3]),
      expectedAt: toDate(row[4]),
      task: row[5],
      attempts: row[6],
      key: row[12] ?? null,
      group: row[13] ?? null,
      trace: row[15] ?? null,
    });
  }
  // `delete ... returning` gives no order; restore the queue's order.
  if (result.rows.length > 1) result.rows.sort(compareRows);
  return result;
}

function compareRows(a: TakenRow, b: TakenRow): number {
  const ea = a.expectedAt?.getTime() ?? Infinity;
  const eb = b.expectedAt?.getTime() ?? Infinity;
  if (ea !== eb) return ea < eb ? -1 : 1;
  return a.id.length - b.id.length || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** How many due jobs a promotion made ready, by lane. */
export interface Promoted {
  plain: number;
  task: number;
}

/**
 * Makes the jobs that came due ready ($1 queue, $2 how many of each kind):
 * scheduled jobs whose time came (the best by the queue's order, so that they
 * compete with the ready ones), and lease jobs whose lease ended without
 * being renewed (their worker died or stopped), which are ready for another
 * attempt, or failed with `LEASE_EXPIRED` once they used up their attempts.
 * Rows another promoter holds are skipped. The caller takes right after.
 *
 * Delete and insert rather than update: the insert trigger then announces
 * the promoted jobs like new ones, so as many waiters wake as jobs came due,
 * in every process (an update woke nobody, and several getters waited for
 * the next poll; tests/wakeups_test.ts). The rows keep their ids.
 *
 * Always run outside the caller's transaction (see `take.ts`): promoted
 * rows locked by a transaction that then took a better job stayed hidden
 * from everyone until it ended.
 */
export function promoteDueJobsSql(names: TableNames): string {
  const t = names.qualified;
  return `with due as (
      select id from ${t}
      where queue = $1 and state = 'scheduled'
        and schedule_at <= statement_timestamp()
      order by expected_at, id
      limit $2
      for no key update skip locked
    ), expired as (
      select id from ${t}
      where queue = $1 and state = 'running'
        and lease_until <= statement_timestamp()
      order by lease_until
      limit $2
      for no key update skip locked
    ), moved as (
      delete from ${t}
      where id in (select id from due union all select id from expired)
      returning *
    ), ready as (
      insert into ${t} (id, queue, task, data, attempts, enqueued_at,
        schedule_at, expected_at, max_attempts, progress, started_at, key,
        group_key, trace, error, state, finished_at)
      select id, queue, task, data, attempts, enqueued_at, schedule_at,
        expected_at, max_attempts, progress, started_at, key, group_key, trace,
        case when m.spent then json_build_object(
            'name', 'PQError', 'code', 'LEASE_EXPIRED',
            'message', 'The lease of job ' || id || ' ended ' || attempts
              || ' time(s) without its worker finishing or renewing it (the worker died, or stopped for longer than the lease)')
          when state = 'running' then json_build_object(
            'name', 'PQError', 'code', 'LEASE_EXPIRED',
            'message', 'The lease of attempt ' || attempts || ' of job ' || id
              || ' ended without its worker finishing or renewing it: it runs again')
          else error end,
        case when m.spent then 'failed' else 'ready' end,
        case when m.spent then statement_timestamp() end
      from (select *, state = 'running'
          and attempts >= coalesce(max_attempts, 1) as spent
        from moved) as m
      returning task, state
    )
    select count(*) filter (where task is null and state = 'ready')::int4,
      count(*) filter (where task is not null and state = 'ready')::int4
    from ready`;
}

/** Runs the statement built by {@linkcode promoteDueJobsSql}. */
export async function promoteDueJobs(
  db: Executor,
  text: string,
  queue: string,
  limit: number,
): Promise<Promoted> {
  const [row] = await db.unsafe(text, [queue, limit], { prepare: true })
    .values();
  return { plain: row[0], task: row[1] };
}
