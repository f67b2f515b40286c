/**
 * The statements of lease mode: claim jobs (committed at once, with a lease
 * and a fencing token), renew the leases of all of a worker's running jobs
 * in one statement, and write their outcomes, fenced by the token so that a
 * worker that lost its lease can never change a job another worker took
 * since.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";
import { arrayLiteral } from "./arrays.ts";
import { pickReadySql } from "./pick_ready.ts";
import {
  dueCte,
  epochMs,
  pausedCheck,
  signalFlags,
  WALK_MS,
} from "./take_jobs.ts";

/**
 * Builds the claim of up to `limit` lease jobs ($1 queue, $2 task names, $3
 * lease in ms by task as JSON, $4 the fencing token, $5 the most attempts by
 * task as JSON: the order `takeJobs` passes a `LeaseClaim` in; marked: the
 * low-water marks from $6); with `ignoreDue`, even while jobs are due (see
 * `takeJobsSql`, whose columns it returns, with the attempts before this
 * one). The claim counts the attempt: a worker that dies mid-job has used it.
 */
export function claimJobsSql(
  names: TableNames,
  limit: number,
  ignoreDue: boolean,
  marked: boolean,
): string {
  const t = names.qualified;
  const dueCheck = ignoreDue
    ? ""
    : "and coalesce((select at from due) > statement_timestamp(), true)";
  const pick = pickReadySql(names, {
    where: `task is not null and task = any($2::text::text[]) ${dueCheck}
      and ${pausedCheck(names)}`,
    limit,
    markParam: marked ? CLAIM_MARK_PARAM : null,
  });
  return `with due as (${dueCte(names, marked)}), ${pick.ctes} claimed as (
      update ${t} as j set state = 'running', attempts = j.attempts + 1,
        started_at = statement_timestamp(),
        lease_until = statement_timestamp()
          + ($3::text::json ->> j.task)::float8 * interval '1 millisecond',
        lease_token = $4::int8,
        max_attempts = ($5::text::json ->> j.task)::int4
      where j.id = any(${pick.ids})
      returning j.id, j.data, j.enqueued_at, j.schedule_at, j.expected_at,
        j.task, j.attempts, j.key, j.group_key, j.trace
    )
    select c.id::text, c.data::text, ${epochMs("c.enqueued_at")},
      ${epochMs("c.schedule_at")}, ${epochMs("c.expected_at")}, c.task,
      c.attempts - 1,
      extract(epoch from (select at from due) - clock_timestamp()) * 1000,
      pg_backend_pid(), true, ${signalFlags(names, "c.id")}, c.key,
      c.group_key, false, c.trace, ${WALK_MS}
    from (select) as one left join claimed as c on true`;
}

/** Where a claim's low-water marks are bound (see `pickReadySql`). */
export const CLAIM_MARK_PARAM = 6;

/** One lease job whose lease a heartbeat renews. */
export interface LeaseHold {
  id: string;
  /** The fencing token of its claim. */
  token: string;
  /** The length of its lease in ms. */
  leaseMs: number;
}

/** What a heartbeat found for a job. */
export type HeartbeatStatus = "renewed" | "locked" | "cancelled" | "lost";

/**
 * Renews the leases of a worker's running jobs in one statement. Rows
 * another transaction holds (a `job.complete(tx)` not yet committed, a
 * cancel) are skipped, not waited for, and reported `locked`; a job that was
 * cancelled is `cancelled`; one whose token changed or that is gone is
 * `lost`.
 */
export async function renewLeases(
  db: Executor,
  names: TableNames,
  holds: readonly LeaseHold[],
): Promise<Map<string, HeartbeatStatus>> {
  const t = names.qualified;
  const rows = await db.unsafe(
    `with h as (
      select * from unnest($1::text::int8[], $2::text::int8[], $3::text::float8[])
        as h(id, token, ms)
    ), mine as (
      select j.id from ${t} as j join h on j.id = h.id
      where j.lease_token = h.token and j.state = 'running'
      for update of j skip locked
    ), renewed as (
      update ${t} as j
      set lease_until = statement_timestamp() + h.ms * interval '1 millisecond'
      from h where j.id = h.id and j.id in (select id from mine)
      returning j.id
    )
    select h.id::text, case
      when exists (select 1 from ${names.signals} as s
          where s.relid = ${names.relid} and s.job_id = h.id
            and s.kind = 'cancel') or c.state = 'cancelled' then 'cancelled'
      when r.id is not null then 'renewed'
      when c.state = 'running' and c.lease_token = h.token then 'locked'
      else 'lost' end
    from h left join renewed as r on r.id = h.id
      left join ${t} as c on c.id = h.id`,
    [
      arrayLiteral(holds.map((h) => h.id)),
      arrayLiteral(holds.map((h) => h.token)),
      arrayLiteral(holds.map((h) => h.leaseMs)),
    ],
    { prepare: true },
  ).values();
  return new Map(rows.map((row) => [row[0], row[1] as HeartbeatStatus]));
}

/** How a lease job's attempt ended, to write. */
export interface LeaseOutcome {
  id: string;
  token: string;
  /**
   * `complete`, `retry` (after `delayMs`, counting the attempt), `snooze`
   * (after `delayMs`, not counting it), `fail`, or `cancel`.
   */
  outcome: "complete" | "retry" | "snooze" | "fail" | "cancel";
  delayMs: number | null;
  /** The error as JSON text (retry, fail). */
  error: string | null;
  /** The result as JSON text (complete, when results are kept). */
  result: string | null;
  /** The progress as JSON text, if the job reported one. */
  progress: string | null;
}

/**
 * Writes the outcomes of lease jobs, each only if the job is still running
 * under its token: returns the ids written; the others had lost their lease
 * (another worker has them now) or were cancelled, and nothing was changed.
 *
 * Every written row is deleted; all but completed jobs without
 * `keepCompleted` are inserted again in their new state, so that a retry
 * that is ready at once wakes waiting workers through the insert trigger.
 * A `waitFor()` on a job that ended is told by NOTIFY, and cancel requests
 * for written jobs are consumed.
 */
export async function finishLeaseJobs(
  db: Executor,
  names: TableNames,
  outcomes: readonly LeaseOutcome[],
  keepCompleted: boolean,
): Promise<Set<string>> {
  if (outcomes.length === 0) return new Set();
  const t = names.qualified;
  const rows = await db.unsafe(
    `with f as (
      select * from unnest($1::text::int8[], $2::text::int8[], $3::text::text[], $4::text::float8[],
        $5::text::text[], $6::text::text[], $7::text::text[])
        as f(id, token, outcome, delay_ms, error, result, progress)
    ), mine as (
      select j.id from ${t} as j join f on j.id = f.id
      where j.lease_token = f.token and j.state = 'running'
      for update of j
    ), gone as (
      delete from ${t} where id in (select id from mine) returning *
    ), back as (
      insert into ${t} (id, queue, task, data, attempts, enqueued_at,
        schedule_at, expected_at, max_attempts, progress, started_at, error,
        result, state, finished_at, key, group_key, trace)
      select g.id, g.queue, g.task, g.data,
        case when f.outcome = 'snooze' then g.attempts - 1 else g.attempts end,
        g.enqueued_at,
        case when f.outcome in ('retry', 'snooze')
          then statement_timestamp() + f.delay_ms * interval '1 millisecond'
          else g.schedule_at end,
        g.expected_at, g.max_attempts,
        coalesce(f.progress::json, g.progress), g.started_at,
        case when f.outcome in ('retry', 'fail') then f.error::json
          else g.error end,
        f.result::json,
        case f.outcome when 'complete' then 'completed'
          when 'fail' then 'failed' when 'cancel' then 'cancelled'
          else case when f.delay_ms > 0 then 'scheduled' else 'ready' end end,
        case when f.outcome in ('complete', 'fail', 'cancel')
          then statement_timestamp() end,
        g.key, g.group_key, g.trace
      from gone as g join f on f.id = g.id
      where f.outcome <> 'complete' or $8::bool
      returning id
    ), ended as (
      select g.id, case f.outcome when 'complete' then 'completed'
          when 'fail' then 'failed' else 'cancelled' end as state
      from gone as g join f on f.id = g.id
      where f.outcome in ('complete', 'fail', 'cancel')
    ), told as (
      select pg_notify('pq_' || ${names.relid}, 'done ' || e.id || ' ' || e.state)
      from ended as e where exists (select 1 from ${names.signals} as s
        where s.relid = ${names.relid} and s.job_id = e.id and s.kind = 'watch')
    ), consumed as (
      delete from ${names.signals}
      where relid = ${names.relid} and kind = 'cancel'
        and job_id in (select id from gone)
    )
    select g.id::text, (select count(*) from told), (select count(*) from back)
    from gone as g`,
    [
      arrayLiteral(outcomes.map((o) => o.id)),
      arrayLiteral(outcomes.map((o) => o.token)),
      arrayLiteral(outcomes.map((o) => o.outcome)),
      arrayLiteral(outcomes.map((o) => o.delayMs)),
      arrayLiteral(outcomes.map((o) => o.error)),
      arrayLiteral(outcomes.map((o) => o.result)),
      arrayLiteral(outcomes.map((o) => o.progress)),
      keepCompleted,
    ],
    { prepare: true },
  ).values();
  return new Set(rows.map((row) => row[0] as string));
}

/**
 * Stores a lease job's progress at once, if it still holds its lease ($1
 * id, $2 token, $3 progress JSON). Returns false when it does not.
 */
export async function saveLeaseProgress(
  db: Executor,
  names: TableNames,
  id: string,
  token: string,
  progress: string,
): Promise<boolean> {
  const rows = await db.unsafe(
    `update ${names.qualified} set progress = $3::text::json
    where id = $1::int8 and lease_token = $2::int8 and state = 'running'
    returning 1`,
    [id, token, progress],
    { prepare: true },
  );
  return rows.length > 0;
}

/**
 * Marks a lease job completed inside the caller's transaction (`tx`), if it
 * still holds its lease: with `keep`, as a completed row with its result
 * and progress, else by deleting it. A `waitFor()` hears of it at commit.
 * Returns false when the lease was lost.
 */
export async function completeLeaseJob(
  tx: Executor,
  names: TableNames,
  id: string,
  token: string,
  kept: { result: string | null; progress: string | null } | null,
): Promise<boolean> {
  const t = names.qualified;
  const told = `told as (
      select pg_notify('pq_' || ${names.relid}, 'done ' || $1 || ' completed')
      where exists (select 1 from done) and exists (
        select 1 from ${names.signals} as s where s.relid = ${names.relid}
          and s.job_id = $1::int8 and s.kind = 'watch'))`;
  const rows = kept
    ? await tx.unsafe(
      `with done as (
        update ${t} set state = 'completed', result = $3::text::json,
          progress = coalesce($4::text::json, progress), lease_until = null,
          lease_token = null, finished_at = statement_timestamp()
        where id = $1::int8 and lease_token = $2::int8 and state = 'running'
        returning 1
      ), ${told}
      select (select count(*) from told) from done`,
      [id, token, kept.result, kept.progress],
      { prepare: true },
    )
    : await tx.unsafe(
      `with done as (
        delete from ${t}
        where id = $1::int8 and lease_token = $2::int8 and state = 'running'
        returning 1
      ), ${told}
      select (select count(*) from told) from done`,
      [id, token],
      { prepare: true },
    );
  return rows.length > 0;
}
