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
import type { Executor, Sql } from "../types.ts";

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
  {
    where: `state = 'running'`,
    order: "lease_until",
    since: "null::timestamptz",
  },
  {
    where: `state in ('failed', 'done')`,
    order: "id",
    since: "null::timestamptz",
  },
];

/** A count of one queue and lane, or a sample's count of a task. */
export interface LaneRow {
  queue: string;
  /** 1 to 5, see the module doc; 6: the table's finished-jobs sample. */
  lane: number;
  /** True: the lane's count (at most `limit`); false: a sample's. */
  total: boolean;
  /** Null for plain jobs (`get()`), and in totals. */
  task: string | null;
  /** Null in totals. */
  state: string | null;
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

const ms = (expression: string) =>
  `(extract(epoch from ${expression}) * 1000)::float8`;

/**
 * Counts the jobs of every queue in each lane, reading at most `limit`
 * index entries per queue and lane (an index-only scan where the
 * visibility map allows), and, for the split by task, at most `sample`
 * rows per queue and lane (these need the table's rows: the indexes do not
 * hold the task). Lane 6 samples `sample` finished jobs of the whole table
 * for the completed and cancelled ones.
 */
export async function countLanes(
  sql: Sql,
  names: TableNames,
  limit: number,
  sample: number,
): Promise<JobCounts> {
  const t = names.qualified;
  const skips = LANES.map((lane, i) => queuesOf(t, lane.where, `q${i + 1}`));
  const due = (since: string) =>
    `case when ${since} <= statement_timestamp() then ${ms(since)} end`;
  const totals = LANES.map((lane, i) =>
    `select ${i + 1} as lane, true as total, null::text as task,
      null::text as state,
      (select count(*) from (select 1 from ${t}
        where queue = q.queue and ${lane.where} limit $1) as x)::float8 as n,
      (select ${due(lane.since)} from ${t}
        where queue = q.queue and ${lane.where}
        order by ${lane.order} limit 1) as since`
  );
  const samples = LANES.slice(1).map((lane, i) =>
    `select ${i + 2}, false, task, state, count(*)::float8, min(${due("since")})
    from (select task, state, ${lane.since}::timestamptz as since from ${t}
      where queue = q.queue and ${lane.where}
      order by ${lane.order} limit $2) as s
    group by task, state`
  );
  // Without JIT: the planner cannot know that each lane stops at its
  // limit, so the statement's cost passes jit_above_cost, and compiling it
  // took 0.8 to 2 s on a 10-million-row table, for a statement that runs
  // in milliseconds (bench/RESULTS.md, stats).
  const rows = await sql.begin(async (tx) => {
    await tx.unsafe(`set local jit = off`);
    return await tx.unsafe(
      `with recursive ${skips.join(", ")},
      queues as (
        ${LANES.map((_, i) => `select queue from q${i + 1}`).join(" union ")}
      ), finished as (
        select queue, task, state from ${t}
        where state in ('completed', 'failed', 'cancelled')
        order by finished_at limit $2
      )
      select q.queue, s.*
      from queues as q cross join lateral (
        ${totals.join(" union all ")} union all ${samples.join(" union all ")}
      ) as s
      where q.queue is not null
      union all
      select queue, 6, false, task, state, count(*)::float8, null
      from finished group by queue, task, state
      union all
      select null, 0, true, null, null, 0, ${ms("statement_timestamp()")}`,
      [limit, sample],
      { prepare: true },
    ).values();
  });
  let now = Date.now();
  const out: LaneRow[] = [];
  for (const r of rows) {
    if (r[1] === 0) {
      now = r[6];
      continue;
    }
    out.push({
      queue: r[0],
      lane: r[1],
      total: r[2],
      task: r[3],
      state: r[4],
      count: r[5],
      readySince: r[6],
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
