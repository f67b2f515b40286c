/**
 * The statements of `stats()`: bounded counts of a table's jobs by queue,
 * task and state, and planner estimates where counting would read too much.
 *
 * No statement here scans the table. Each reads at most `limit` rows of
 * each partial index per queue (a "lane"), in the index's order:
 *
 * | lane | index            | rows                              |
 * | ---- | ---------------- | --------------------------------- |
 * | 1    | ready_plain_idx  | ready plain jobs, in taking order |
 * | 2    | ready_task_idx   | ready task jobs, in taking order  |
 * | 3    | scheduled_idx    | scheduled jobs, due ones first    |
 * | 4    | running_idx      | running lease jobs                |
 * | 5    | finished_idx     | failed jobs and `done` records    |
 *
 * A lane that yields `limit` rows has at least that many: its counts are
 * lower bounds. The queues come from a skip scan of each index (one index
 * probe per queue, `order by queue limit 1` from the last one), not from a
 * `distinct` over the table. Completed and cancelled jobs have no index by
 * queue (only `finished_at_idx`, for the pruner): one sample of at most
 * `limit` finished rows of the whole table counts them exactly when there
 * are fewer; otherwise `estimateFinished()` asks the planner.
 *
 * @module
 */

import type { TableNames } from "../schema.ts";
import type { Executor } from "../types.ts";

/** The lanes, by number, and the predicates of their partial indexes. */
const LANES: readonly { where: string; order: string; since: string }[] = [
  {
    where: `state = 'ready' and task is null`,
    order: "expected_at, id",
    since: "coalesce(schedule_at, enqueued_at)",
  },
  {
    where: `state = 'ready' and task is not null`,
    order: "expected_at, id",
    since: "coalesce(schedule_at, enqueued_at)",
  },
  { where: `state = 'scheduled'`, order: "schedule_at", since: "schedule_at" },
  { where: `state = 'running'`, order: "lease_until", since: "null" },
  { where: `state in ('failed', 'done')`, order: "id", since: "null" },
];

/** Jobs of one queue, lane, task and state, out of a bounded sample. */
export interface LaneRow {
  queue: string;
  /** 1 to 5, see the module doc; 6: the table's finished-jobs sample. */
  lane: number;
  /** Null for plain jobs (`get()`). */
  task: string | null;
  state: string;
  count: number;
  /** Epoch ms: the oldest time from which one of them was ready. */
  readySince: number | null;
}

/** What one `stats()` statement reads. */
export interface JobCounts {
  /** The server's clock, epoch ms: lags are measured from it. */
  now: number;
  rows: LaneRow[];
}

/** A skip scan over the queues of one partial index. */
function queuesOf(t: string, where: string, name: string): string {
  return `${name} as (
      (select queue from ${t} where ${where} order by queue limit 1)
      union all
      select (select queue from ${t} where ${where} and queue > ${name}.queue
        order by queue limit 1)
      from ${name} where ${name}.queue is not null
    )`;
}

/**
 * Counts the jobs of every queue in each lane, reading at most `limit`
 * rows per queue and lane, plus a sample of at most `limit` finished jobs
 * of the whole table (lane 6) for the completed and cancelled ones.
 */
export async function countLanes(
  db: Executor,
  names: TableNames,
  limit: number,
): Promise<JobCounts> {
  const t = names.qualified;
  const skips = LANES.map((lane, i) => queuesOf(t, lane.where, `q${i + 1}`));
  const samples = LANES.map((lane, i) =>
    `(select ${i + 1} as lane, task, state, ${lane.since} as since
      from ${t} where queue = q.queue and ${lane.where}
      order by ${lane.order} limit $1)`
  );
  const rows = await db.unsafe(
    `with recursive ${skips.join(", ")},
    queues as (
      ${LANES.map((_, i) => `select queue from q${i + 1}`).join(" union ")}
    ), finished as (
      select queue, task, state from ${t}
      where state in ('completed', 'failed', 'cancelled')
      order by finished_at limit $1
    )
    select q.queue, s.lane, s.task, s.state, count(*)::float8,
      (extract(epoch from min(s.since)
        filter (where s.since <= statement_timestamp())) * 1000)::float8
    from queues as q cross join lateral (${samples.join(" union all ")}) as s
    where q.queue is not null
    group by 1, 2, 3, 4
    union all
    select queue, 6, task, state, count(*)::float8, null from finished
    group by 1, 2, 3, 4
    union all
    select null, 0, null, 'now', 0,
      (extract(epoch from statement_timestamp()) * 1000)::float8`,
    [limit],
    { prepare: true },
  ).values();
  let now = Date.now();
  const out: LaneRow[] = [];
  for (const r of rows) {
    if (r[1] === 0) {
      now = r[5];
      continue;
    }
    out.push({
      queue: r[0],
      lane: r[1],
      task: r[2],
      state: r[3],
      count: r[4],
      readySince: r[5],
    });
  }
  return { now, rows: out };
}

/**
 * The planner's estimate of a queue's jobs in `state`: what EXPLAIN says
 * without running the query (from the column statistics ANALYZE keeps, so
 * as fresh as the last autovacuum analyze). Used only for states with too
 * many jobs to count.
 */
export async function estimateJobs(
  db: Executor,
  names: TableNames,
  queue: string,
  state: string,
): Promise<number> {
  const [row] = await db.unsafe(
    `explain (format json) select 1 from ${names.qualified}
    where queue = $1 and state = $2`,
    [queue, state],
  ).values();
  const plan = typeof row[0] === "string" ? JSON.parse(row[0]) : row[0];
  return Math.round(plan?.[0]?.Plan?.["Plan Rows"] ?? 0);
}
