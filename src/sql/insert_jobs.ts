/**
 * Putting jobs: one statement for one job, one statement for many.
 *
 * Every statement takes the put's trace context (a W3C `traceparent`, see
 * `telemetry.ts`) as one parameter for the whole batch: a batch has one
 * producer span. Without OpenTelemetry it is a null, which costs nothing
 * measurable (bench/RESULTS.md).
 *
 * Relative times ("5m", 300000) are added to the server's clock, not the
 * client's, so a client whose clock is off still schedules correctly; the
 * same clock decides when the job is due.
 *
 * @module
 */

import { noteReachable } from "../reconnect_backoff.ts";
import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { arrayLiteral } from "./arrays.ts";
import { boundTransactionCheck } from "./take_jobs.ts";

/** A resolved time: absolute, or a delay from the statement's time. */
export type When = { at: Date } | { delayMs: number } | undefined;

/** A unique key of a put (see `migrations/table_v4.ts`). */
export interface UniqueKey {
  /** The key, unique per queue among waiting jobs. */
  key: string;
  /** Replace a waiting job's data and times (else keep it). */
  replace: boolean;
  /** One job per key per period of this many ms, whatever its state. */
  throttleMs: number | null;
}

/** A job's times and unique key. */
export interface NewJobOptions {
  /** When it may be taken; undefined: at once. */
  scheduleAt?: When;
  /** Its priority: earlier goes first; undefined: after those with one. */
  expectedAt?: When;
  /** Its unique key, if it has one. */
  unique?: UniqueKey | null;
  /** Its flow-control group (a task's `group`), if it has one. */
  group?: string | null;
}

/** A job to insert, its data already encoded. */
export interface NewJob extends NewJobOptions {
  /** The encoded data (JSON text). */
  data: string;
}

/**
 * The check a statement gains when its queue is bound to a caller's
 * transaction (`with(tx)`), on parameter `param` (see
 * `boundTransactionCheck`). Unbound statements pay nothing.
 */
function boundParts(bound: boolean, param: number, where: string) {
  return { where: bound ? `${where} ${boundTransactionCheck(param)}` : "" };
}

/**
 * Builds the single-job insert ($1 queue, $2 task, $3 data, $4/$5 schedule
 * at/in, $6/$7 expected at/in, $8 group, $9 trace; bound: $10); it returns
 * the new id.
 */
export function insertJobSql(names: TableNames, bound = false): string {
  const b = boundParts(bound, 10, "where");
  return `insert into ${names.qualified}
      (queue, task, data, schedule_at, expected_at, state, group_key, trace)
    select $1::text, $2::text, $3::text::json, v.s, v.e,
      case when v.s > statement_timestamp() then 'scheduled' else 'ready' end,
      $8::text, $9::text
    from (select
      coalesce($4::timestamptz,
        statement_timestamp() + $5::float8 * interval '1 millisecond') as s,
      coalesce($6::timestamptz,
        statement_timestamp() + $7::float8 * interval '1 millisecond') as e
    ) as v ${b.where}
    returning id::text`;
}

/**
 * Builds the single-job insert of a job without times, the common put ($1
 * queue, $2 task, $3 data, $4 group, $5 trace; bound: $6). It stores what
 * {@linkcode insertJobSql} stores for such a job (no times, `ready`) with
 * five parameters instead of nine and no time arithmetic, so the server
 * binds, plans and runs less for each put (measured in bench/RESULTS.md,
 * "Single put").
 */
export function insertReadyJobSql(names: TableNames, bound = false): string {
  const b = boundParts(bound, 6, "where");
  return `insert into ${names.qualified}
      (queue, task, data, state, group_key, trace)
    select $1::text, $2::text, $3::text::json, 'ready', $4::text, $5::text
    ${b.where}
    returning id::text`;
}

/**
 * Builds the many-jobs insert: the same columns as {@linkcode insertJobSql},
 * each as an array but the trace ($9, one for the batch), unnested in one
 * statement (bound: $10). Rows are inserted in array order, so their
 * identity values ascend in that order.
 */
export function insertJobsSql(names: TableNames, bound = false): string {
  const b = boundParts(bound, 10, "where");
  return `insert into ${names.qualified}
      (queue, task, data, schedule_at, expected_at, state, group_key, trace)
    select $1::text, $2::text, v.d::json, v.s, v.e,
      case when v.s > statement_timestamp() then 'scheduled' else 'ready' end,
      v.g, $9::text
    from (select u.d, u.n, u.g,
        coalesce(u.sa, statement_timestamp() + u.sd * interval '1 millisecond') as s,
        coalesce(u.ea, statement_timestamp() + u.ed * interval '1 millisecond') as e
      from unnest($3::text::text[], $4::text::timestamptz[], $5::text::float8[],
        $6::text::timestamptz[], $7::text::float8[], $8::text::text[])
        with ordinality as u(d, sa, sd, ea, ed, g, n)
    ) as v ${b.where}
    order by v.n
    returning id::text`;
}

/**
 * Builds the many-jobs insert for jobs without times ($4 trace; bound: $5):
 * one array instead of five, four of them all nulls (6.4 ms against 5.1 ms
 * for 1,000 jobs, one connection, median of 3).
 */
export function insertReadyJobsSql(names: TableNames, bound = false): string {
  const b = boundParts(bound, 5, "where");
  return `insert into ${names.qualified} (queue, task, data, state, trace)
    select $1::text, $2::text, u.d::json, 'ready', $4::text
    from unnest($3::text::text[]) with ordinality as u(d, n) ${b.where}
    order by u.n
    returning id::text`;
}

/**
 * Builds the put of jobs with unique keys (and any others of the same
 * batch): a call of the table's `put_keyed` function, with arrays ($1
 * queue, $2 task, $3 keys, $4 data, $5/$6 schedule at/in, $7/$8 expected
 * at/in, $9 replace, $10 throttle ms, $11 groups, $12 trace; bound: $13).
 * One statement, like an unkeyed put; the ids come back in input order.
 */
export function insertKeyedSql(names: TableNames, bound = false): string {
  const call = `${names.putKeyedFunction}($1::text, $2::text,
      $3::text::text[], $4::text::text[], $5::text::timestamptz[],
      $6::text::float8[], $7::text::timestamptz[], $8::text::float8[],
      $9::text::bool[], $10::text::float8[], $11::text::text[], $12::text)`;
  // Bound: the check runs first, and the function only if it passes.
  return bound
    ? `select p.id::text from (select ${boundTransactionCheck(13)} as ok)
        as c cross join lateral ${call} with ordinality as p(id, n)
      where c.ok order by p.n`
    : `select p.id::text from ${call} with ordinality as p(id, n)
      order by p.n`;
}

/** The statements that insert jobs, for a client or for a bound queue. */
export interface InsertStatements {
  /** {@linkcode insertJobSql}. */
  one: string;
  /** {@linkcode insertReadyJobSql}. */
  oneReady: string;
  /** {@linkcode insertJobsSql}. */
  timed: string;
  /** {@linkcode insertReadyJobsSql}. */
  ready: string;
  /** {@linkcode insertKeyedSql}. */
  keyed: string;
}

/** Builds the insert statements of a table. */
export function insertStatements(
  names: TableNames,
  bound: boolean,
): InsertStatements {
  return {
    one: insertJobSql(names, bound),
    oneReady: insertReadyJobSql(names, bound),
    timed: insertJobsSql(names, bound),
    ready: insertReadyJobsSql(names, bound),
    keyed: insertKeyedSql(names, bound),
  };
}

/** The transaction a statement is bound to (see `binding.ts`). */
export interface BoundCheck {
  /** The binding's mark, the check's parameter. */
  readonly mark: string;
}

function at(when: When): Date | null {
  return when && "at" in when ? when.at : null;
}

/** A Date as ISO text, for an array parameter (see `arrays.ts`). */
export function isoText(date: Date | null): string | null {
  return date === null ? null : date.toISOString();
}

function delay(when: When): number | null {
  return when && "delayMs" in when ? when.delayMs : null;
}

/**
 * Inserts one job; returns its id, or null when the statement was bound
 * (`bound` given) and its transaction had ended, so nothing was written.
 *
 * @param bound The transaction the statement must run in.
 * @param trace The put's trace context (a `traceparent`), if any.
 */
export async function insertJob(
  db: Executor,
  statements: InsertStatements,
  queue: string,
  task: string | null,
  job: NewJob,
  bound?: BoundCheck,
  trace: string | null = null,
): Promise<string | null> {
  if (job.unique) {
    const ids = await insertJobs(
      db,
      statements,
      queue,
      task,
      [job],
      bound,
      trace,
    );
    return ids?.[0] ?? null;
  }
  const timed = Boolean(job.scheduleAt || job.expectedAt);
  const params: unknown[] = timed
    ? [
      queue,
      task,
      job.data,
      at(job.scheduleAt),
      delay(job.scheduleAt),
      at(job.expectedAt),
      delay(job.expectedAt),
      job.group ?? null,
      trace,
    ]
    : [queue, task, job.data, job.group ?? null, trace];
  if (bound) params.push(bound.mark);
  const text = timed ? statements.one : statements.oneReady;
  const [row] = await db.unsafe(text, params as never[], {
    prepare: true,
  }).values();
  noteReachable(db);
  return row ? row[0] : null;
}

/**
 * Inserts many jobs in one statement; returns their ids in input order, or
 * null when bound (see {@linkcode insertJob}) to a transaction that ended.
 *
 * @param statements The statements of {@linkcode insertJobsSql} and
 * {@linkcode insertReadyJobsSql}; the second when no job has a time.
 * @param trace The batch's trace context (a `traceparent`), if any.
 */
export async function insertJobs(
  db: Executor,
  statements: InsertStatements,
  queue: string,
  task: string | null,
  jobs: NewJob[],
  bound?: BoundCheck,
  trace: string | null = null,
): Promise<string[] | null> {
  if (jobs.length === 0) return [];
  if (jobs.some((j) => j.unique)) {
    return await insertKeyed(
      db,
      statements.keyed,
      queue,
      task,
      jobs,
      bound,
      trace,
    );
  }
  const data = arrayLiteral(jobs.map((j) => j.data));
  const params: unknown[] =
    jobs.every((j) => !j.scheduleAt && !j.expectedAt && !j.group)
      ? [queue, task, data, trace]
      : [
        queue,
        task,
        data,
        arrayLiteral(jobs.map((j) => isoText(at(j.scheduleAt)))),
        arrayLiteral(jobs.map((j) => delay(j.scheduleAt))),
        arrayLiteral(jobs.map((j) => isoText(at(j.expectedAt)))),
        arrayLiteral(jobs.map((j) => delay(j.expectedAt))),
        arrayLiteral(jobs.map((j) => j.group ?? null)),
        trace,
      ];
  const text = params.length === 4 ? statements.ready : statements.timed;
  if (bound) params.push(bound.mark);
  const rows = await db.unsafe(text, params as never[], { prepare: true })
    .values();
  noteReachable(db);
  if (bound && rows.length === 0) return null;
  // Identity values are drawn in insertion order, which is input order;
  // sorting makes that explicit whatever order RETURNING uses.
  const ids = rows.map((row) => row[0] as string);
  ids.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return ids;
}

/** Puts jobs through `put_keyed` (see {@linkcode insertKeyedSql}). */
async function insertKeyed(
  db: Executor,
  text: string,
  queue: string,
  task: string | null,
  jobs: NewJob[],
  bound: BoundCheck | undefined,
  trace: string | null,
): Promise<string[] | null> {
  const params: unknown[] = [
    queue,
    task,
    arrayLiteral(jobs.map((j) => j.unique?.key ?? null)),
    arrayLiteral(jobs.map((j) => j.data)),
    arrayLiteral(jobs.map((j) => isoText(at(j.scheduleAt)))),
    arrayLiteral(jobs.map((j) => delay(j.scheduleAt))),
    arrayLiteral(jobs.map((j) => isoText(at(j.expectedAt)))),
    arrayLiteral(jobs.map((j) => delay(j.expectedAt))),
    arrayLiteral(jobs.map((j) => j.unique?.replace ?? false)),
    arrayLiteral(jobs.map((j) => j.unique?.throttleMs ?? null)),
    arrayLiteral(jobs.map((j) => j.group ?? null)),
    trace,
  ];
  if (bound) params.push(bound.mark);
  const rows = await db.unsafe(text, params as never[], { prepare: true })
    .values();
  noteReachable(db);
  if (bound && rows.length === 0) return null;
  return rows.map((row) => row[0] as string);
}
