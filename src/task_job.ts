/**
 * What a task's handler gets besides its argument: the running job, in
 * transaction mode (`TaskJob`, with `job.tx`) or in lease mode (`LeaseJob`,
 * with `job.complete(tx)`), and the `Snooze` a handler returns to come back
 * later.
 *
 * @module
 */

import type { DurationInput } from "./duration.ts";
import type { TransactionSql } from "./types.ts";

/**
 * What `job.snooze(delay)` returns: return it from the handler, and the job
 * goes back to the queue, scheduled `delay` from now, without counting the
 * attempt.
 *
 * @example Come back in ten minutes
 * ```ts ignore
 * queue.task("poll", (args: { url: string }, job) => {
 *   if (!ready(args.url)) return job.snooze("10m");
 * });
 * ```
 */
export class Snooze {
  /** How long from now the job comes back, in milliseconds. */
  readonly delayMs: number;

  /**
   * Made by `job.snooze(delay)`.
   *
   * @param delayMs How long from now, in milliseconds.
   */
  constructor(delayMs: number) {
    this.delayMs = delayMs;
  }
}

/**
 * The running job, in both task modes.
 *
 * @example Report progress, and stop when told to
 * ```ts
 * import type { RunningJob } from "@pq/pq";
 *
 * async function resize(files: string[], job: RunningJob): Promise<void> {
 *   for (const [i, file] of files.entries()) {
 *     job.signal.throwIfAborted(); // cancelled, lease lost or the worker stops
 *     await fetch(`data:,${file}`, { signal: job.signal });
 *     await job.progress({ done: i + 1, of: files.length });
 *   }
 * }
 * ```
 */
export interface RunningJob {
  /** The job's id (the id the enqueuing call returned). */
  readonly id: string;
  /** The queue's name. */
  readonly queue: string;
  /** The task's name. */
  readonly task: string;
  /** Which run this is: 1 on the first, 2 on the first retry, ... */
  readonly attempt: number;
  /**
   * Aborted when the handler should stop: the job was cancelled (reason: a
   * `PQError` with code `CANCELLED`), its lease was lost (`LEASE_LOST`), or
   * the worker's grace period ended (`FORCED_STOP`). What the handler does
   * after that is not recorded.
   */
  readonly signal: AbortSignal;
  /** When the job was put. */
  readonly enqueuedAt: Date;
  /** When it was scheduled, if it was (for a retry: the retry's time). */
  readonly scheduleAt: Date | null;
  /** Its expected time, if it had one. */
  readonly expectedAt: Date | null;
  /**
   * Stores a small JSON value as the job's progress, for `queue.job(id)`.
   * In lease mode it is visible at once (at most four writes a second per
   * job: a quicker call is merged into the next write); in transaction mode,
   * when the attempt's outcome is written.
   */
  progress(value: unknown): Promise<void>;
  /**
   * Ends this attempt without counting it: return what this returns from
   * the handler, and the job comes back `delay` from now. In transaction
   * mode, what the handler wrote through `job.tx` is kept.
   */
  snooze(delay: DurationInput): Snooze;
}

/**
 * The running job of a task in transaction mode (the default): the handler
 * runs inside the transaction that takes the job.
 *
 * @example A handler that uses the job
 * ```ts
 * import type { TaskJob } from "@pq/pq";
 *
 * async function send(args: { to: string }, job: TaskJob): Promise<void> {
 *   // job.id is a good idempotency key for side effects outside the database.
 *   await fetch("data:,sent", { signal: job.signal });
 *   await job.tx`select ${args.to}, ${job.id}, ${job.attempt}`;
 * }
 * ```
 */
export interface TaskJob extends RunningJob {
  /**
   * The job's transaction: what the handler writes through it commits
   * together with the job leaving the queue, or not at all.
   */
  readonly tx: TransactionSql;
}

/**
 * The running job of a task in lease mode (`{ lease }`): the claim has
 * committed, and the handler runs with no transaction open, while the
 * worker renews the lease.
 *
 * @example Finish atomically with your own writes
 * ```ts
 * import type { LeaseJob, Sql } from "@pq/pq";
 *
 * async function encode(sql: Sql, file: string, job: LeaseJob): Promise<void> {
 *   const out = `${file}.mp4`; // the long work, outside any transaction
 *   await sql.begin(async (tx) => {
 *     await tx`select ${out}`; // your writes
 *     await job.complete(tx); // the job is completed with them, or not at all
 *   });
 * }
 * ```
 */
export interface LeaseJob extends RunningJob {
  /** Absent: a lease job runs outside any transaction. */
  readonly tx?: undefined;
  /**
   * Marks the job completed inside your transaction: if it commits, the job
   * is completed exactly once together with your writes; if it rolls back,
   * nothing happened. After it, the worker writes nothing more for this
   * attempt when the handler returns.
   *
   * @param tx Your transaction.
   * @param result The job's result, kept when results are kept (`keep`).
   * @throws {PQError} `LEASE_LOST` when another worker has the job now (its
   * lease ended): roll your transaction back.
   */
  complete(tx: TransactionSql, result?: unknown): Promise<void>;
}

/**
 * The job a handler gets for task options `O`: a `LeaseJob` with `lease`,
 * else a `TaskJob`.
 *
 * @example
 * ```ts
 * import type { JobFor, LeaseJob } from "@pq/pq";
 *
 * const check: JobFor<{ lease: "2m" }> extends LeaseJob ? true : false = true;
 * ```
 */
export type JobFor<O> = O extends { lease: DurationInput } ? LeaseJob
  : TaskJob;
