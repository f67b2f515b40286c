/**
 * `pq.stats()`: per queue and per task, jobs by state, the lag, and jobs
 * finished per minute over the last hour; cheap on a table of any size.
 *
 * Counts read at most `limit` rows per queue and partial index (see
 * `sql/stats.ts`), so every count says how far it can be trusted: `exact`,
 * `atLeast` (counting stopped at the limit) or `estimate` (the planner's,
 * for completed and cancelled jobs when the table keeps more than `limit`
 * of them). The per-minute figures come from `pq_counts`, which workers
 * fill (see `counters.ts`); they cover task jobs run by `work()`, not plain
 * jobs taken with `get()`.
 *
 * @module
 */

import { checkOptions } from "./check_options.ts";
import type { PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import { withAction } from "./new_jobs.ts";
import type { JobState } from "./options.ts";
import { readCounts } from "./sql/counts.ts";
import { countLanes, estimateJobs } from "./sql/stats.ts";

/** How far a count can be trusted. */
export type CountKind = "exact" | "atLeast" | "estimate";

/**
 * A number of jobs: `exact`, a lower bound (`atLeast`: counting stopped at
 * the limit), or the planner's `estimate` (no rows read).
 *
 * @example Show a count
 * ```ts
 * import type { StatCount } from "@pq/pq";
 *
 * const show = (c: StatCount) =>
 *   c.kind === "exact" ? `${c.count}` : c.kind === "atLeast" ? `${c.count}+` : `~${c.count}`;
 * console.log(show({ count: 1000, kind: "atLeast" })); // 1000+
 * ```
 */
export interface StatCount {
  /** The number of jobs (see `kind`). */
  count: number;
  /** How far `count` can be trusted. */
  kind: CountKind;
}

/** Jobs finished in one minute. */
export interface MinuteCounts {
  /** The minute's start. */
  minute: Date;
  /** Task jobs that completed. */
  completed: number;
  /** Task jobs that failed for good. */
  failed: number;
  /** Attempts that failed and were retried. */
  retried: number;
}

/**
 * The statistics of a task, or of a whole queue ({@linkcode QueueStats}).
 *
 * @example
 * ```ts
 * import type { TaskStats } from "@pq/pq";
 *
 * const busy = (t: TaskStats) => t.counts.ready.count > 0;
 * ```
 */
export interface TaskStats {
  /** The task's name (the queue's, in {@linkcode QueueStats}). */
  name: string;
  /**
   * Jobs by state. A job that a transaction-mode worker runs is still
   * `ready` until its batch commits; `running` counts lease-mode jobs.
   */
  counts: Record<JobState, StatCount>;
  /**
   * How long the oldest ready job has been waiting, in ms (from its put,
   * or from its `scheduleAt` when that came due); null when none is ready.
   * Taken from the first `limit` ready jobs in taking order, which are the
   * oldest unless jobs have an `expectedAt`.
   */
  lagMs: number | null;
  /** The last 60 minutes, oldest first, the current minute last. */
  perMinute: MinuteCounts[];
}

/**
 * The statistics of one queue: its totals and those of each task.
 *
 * @example
 * ```ts
 * import type { QueueStats } from "@pq/pq";
 *
 * const failedLastHour = (q: QueueStats) =>
 *   q.perMinute.reduce((sum, m) => sum + m.failed, 0);
 * ```
 */
export interface QueueStats extends TaskStats {
  /** The task jobs' statistics by task, sorted by name. */
  tasks: TaskStats[];
}

/**
 * What `pq.stats()` returns.
 *
 * @example
 * ```ts
 * import type { PQStats } from "@pq/pq";
 *
 * const names = (s: PQStats) => s.queues.map((q) => q.name);
 * ```
 */
export interface PQStats {
  /** The server's time when the counts were read. */
  at: Date;
  /** The most rows read per queue and index (the `limit` option). */
  limit: number;
  /** Every queue with jobs or recent counts, sorted by name. */
  queues: QueueStats[];
}

/**
 * The options of `pq.stats()`.
 *
 * @example
 * ```ts
 * import type { StatsOptions } from "@pq/pq";
 *
 * const precise: StatsOptions = { limit: 100_000 };
 * ```
 */
export interface StatsOptions {
  /**
   * Count at most this many jobs per queue and state before answering "at
   * least" (default 10,000, at most 1,000,000): the cost of `stats()`
   * grows with it.
   */
  limit?: number;
}

const STATES: readonly JobState[] = [
  "ready",
  "scheduled",
  "running",
  "completed",
  "failed",
  "cancelled",
];
const MINUTES = 60;
const DEFAULT_LIMIT = 10_000;
const MAX_LIMIT = 1_000_000;
/**
 * The split by task reads at most this many rows per queue and state (the
 * indexes do not hold the task, so each is a read of the table's row):
 * 1,000 took most of stats()'s 100 ms on a 10-million-row table.
 */
const TASK_SAMPLE = 500;

/** The kind of a sum of counts: the least trustworthy one. */
function weaker(a: CountKind, b: CountKind): CountKind {
  if (a === "estimate" || b === "estimate") return "estimate";
  return a === "atLeast" || b === "atLeast" ? "atLeast" : "exact";
}

/** One task's or queue's figures while they are summed up. */
class Tally {
  readonly counts = Object.fromEntries(
    STATES.map((s) => [s, { count: 0, kind: "exact" as CountKind }]),
  ) as Record<JobState, StatCount>;
  readySince: number | null = null;
  readonly perMinute: MinuteCounts[];

  constructor(firstMinute: number) {
    this.perMinute = Array.from({ length: MINUTES }, (_, i) => ({
      minute: new Date(firstMinute + i * 60_000),
      completed: 0,
      failed: 0,
      retried: 0,
    }));
  }

  add(state: JobState, count: number, kind: CountKind): void {
    const c = this.counts[state];
    c.count += count;
    c.kind = weaker(c.kind, kind);
  }

  since(at: number | null): void {
    if (at !== null && (this.readySince === null || at < this.readySince)) {
      this.readySince = at;
    }
  }

  stats(name: string, now: number): TaskStats {
    return {
      name,
      counts: this.counts,
      lagMs: this.readySince === null
        ? null
        : Math.max(0, Math.round(now - this.readySince)),
      perMinute: this.perMinute,
    };
  }
}

/** The state each lane's total counts (lane 5 is split, see below). */
const LANE_STATES: Record<number, JobState> = {
  1: "ready",
  2: "ready",
  3: "scheduled",
  4: "running",
  5: "failed",
};

/** Reads the statistics of every queue of a PQ's table. */
export async function readStats(
  core: PQCore,
  options: StatsOptions | undefined,
): Promise<PQStats> {
  let limit = DEFAULT_LIMIT;
  try {
    limit = checkOptions(options, ["limit"]).limit ?? DEFAULT_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new RangeError(
        `'limit' must be a whole number from 1 to ${MAX_LIMIT}: received ${
          describe(limit)
        }`,
      );
    }
  } catch (error) {
    withAction("read stats", error);
  }
  const { sql, names } = core;
  const sample = Math.min(limit, TASK_SAMPLE);
  const [jobs, minutes] = await Promise.all([
    countLanes(sql, names, limit, sample),
    readCounts(sql, names, MINUTES),
  ]);
  const firstMinute = Math.floor(jobs.now / 60_000) * 60_000 -
    (MINUTES - 1) * 60_000;
  const queues = new Map<string, { all: Tally; tasks: Map<string, Tally> }>();
  const queueOf = (name: string) => {
    let q = queues.get(name);
    if (!q) {
      queues.set(name, q = { all: new Tally(firstMinute), tasks: new Map() });
    }
    return q;
  };
  const taskOf = (queue: string, task: string) => {
    const tasks = queueOf(queue).tasks;
    let t = tasks.get(task);
    if (!t) tasks.set(task, t = new Tally(firstMinute));
    return t;
  };
  // The lanes' counts by queue; then the samples' split by task.
  const totals = new Map<string, number>();
  const key = (queue: string, lane: number) => `${lane}\0${queue}`;
  const lane5 = new Map<string, { failed: number; done: number }>();
  let finished = 0;
  for (const row of jobs.rows) {
    if (row.total) totals.set(key(row.queue, row.lane), row.count);
    else if (row.lane === 6) finished += row.count;
    else if (row.lane === 5) {
      const split = lane5.get(row.queue) ?? { failed: 0, done: 0 };
      split[row.state === "done" ? "done" : "failed"] += row.count;
      lane5.set(row.queue, split);
    }
  }
  // A sample is the whole lane when the lane has fewer jobs than it reads.
  const whole = (queue: string, lane: number) =>
    (totals.get(key(queue, lane)) ?? 0) < sample;
  const finishedWhole = finished < sample;
  for (const row of jobs.rows) {
    const q = queueOf(row.queue);
    if (row.total) {
      const kind: CountKind = row.count >= limit ? "atLeast" : "exact";
      q.all.since(row.readySince);
      if (row.lane !== 5) q.all.add(LANE_STATES[row.lane], row.count, kind);
      else {
        // Failed jobs and `done` records share an index: split the count
        // as the sample does.
        const split = lane5.get(row.queue) ?? { failed: 0, done: 0 };
        if (split.done === 0) q.all.add("failed", row.count, kind);
        else if (whole(row.queue, 5)) {
          q.all.add("failed", split.failed, "exact");
          q.all.add("completed", split.done, "exact");
        } else {
          const failed = Math.round(
            row.count * split.failed / (split.failed + split.done),
          );
          q.all.add("failed", failed, "estimate");
          q.all.add("completed", row.count - failed, "estimate");
        }
      }
      continue;
    }
    if (row.lane === 6) {
      // The table's finished sample: failed jobs are counted in lane 5.
      if (row.state === "failed") continue;
      const state = row.state as JobState;
      q.all.add(state, row.count, finishedWhole ? "exact" : "atLeast");
      if (row.task !== null) {
        taskOf(row.queue, row.task).add(
          state,
          row.count,
          finishedWhole ? "exact" : "atLeast",
        );
      }
      continue;
    }
    if (row.task === null) continue;
    const t = taskOf(row.queue, row.task);
    const state: JobState = row.lane === 2
      ? "ready"
      : row.state === "done"
      ? "completed"
      : row.state as JobState;
    t.add(state, row.count, whole(row.queue, row.lane) ? "exact" : "atLeast");
    t.since(row.readySince);
  }
  for (const m of minutes) {
    const i = Math.round((m.minute - firstMinute) / 60_000);
    if (i < 0 || i >= MINUTES) continue;
    for (const tally of [queueOf(m.queue).all, taskOf(m.queue, m.task)]) {
      const bucket = tally.perMinute[i];
      bucket.completed += m.completed;
      bucket.failed += m.failed;
      bucket.retried += m.retried;
    }
  }
  if (!finishedWhole) {
    // Too many finished jobs to count: ask the planner, per queue.
    await Promise.all(
      [...queues].flatMap(([name, q]) =>
        (["completed", "cancelled"] as const).map(async (state) => {
          const estimate = await estimateJobs(sql, names, name, state);
          const c = q.all.counts[state];
          c.count = Math.max(c.count, estimate);
          c.kind = "estimate";
        })
      ),
    );
    for (const q of queues.values()) {
      for (const t of q.tasks.values()) {
        t.counts.completed.kind = weaker(t.counts.completed.kind, "atLeast");
        t.counts.cancelled.kind = weaker(t.counts.cancelled.kind, "atLeast");
      }
    }
  }
  const sorted = [...queues].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    at: new Date(jobs.now),
    limit,
    queues: sorted.map(([name, q]) => ({
      ...q.all.stats(name, jobs.now),
      tasks: [...q.tasks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([task, t]) => t.stats(task, jobs.now)),
    })),
  };
}
