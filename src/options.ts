/**
 * The options of pq's calls, and the results of a queue's listings (the
 * options of `work()` are in `work_options.ts`, with their reading).
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { DurationInput, TimeInput } from "./duration.ts";
import type { RateLimit } from "./limits.ts";
import type { StoredError } from "./stored_error.ts";
import type { Schema } from "./validation.ts";

/**
 * Options of `Queue.put`.
 *
 * @example Delay and priority
 * ```ts
 * import type { PutOptions } from "@pq/pq";
 *
 * const later: PutOptions = { scheduleAt: "5m" };
 * const urgent: PutOptions = { expectedAt: new Date(Date.now() + 60_000) };
 * ```
 */
export interface PutOptions {
  /**
   * When the job may be taken at the earliest: a Date, milliseconds from
   * now, or a duration such as `"5m"`. Default: at once.
   */
  scheduleAt?: TimeInput;
  /**
   * When the job is expected to be done: ready jobs with an earlier
   * `expectedAt` are taken first, jobs without one after all jobs with one.
   * A Date, milliseconds from now, or a duration such as `"5m"`.
   */
  expectedAt?: TimeInput;
  /**
   * A unique key in the queue (any non-empty string, like a queue name).
   * While a job with this key waits (ready or scheduled, not started), a put
   * with the same key creates nothing and returns that job's id; once it
   * runs, a put makes a new job. Exact under any concurrency, and a put
   * never waits for a running job.
   */
  key?: string;
  /**
   * With `key`: `"keep"` (default) the waiting job as it is, or `"replace"`
   * its data and times with the new ones, keeping its id (debounce).
   */
  onDuplicate?: "keep" | "replace";
  /**
   * With `key`: at most one job per key per period (periods aligned to the
   * epoch), whether or not the first has run; a put in the same period
   * returns that job's id.
   */
  throttle?: DurationInput;
}

/**
 * One job of `Queue.putMany`: its data and, optionally, its times.
 *
 * @example Items of a batch
 * ```ts
 * import type { JobInput } from "@pq/pq";
 *
 * const items: JobInput<{ kind: string }>[] = [
 *   { data: { kind: "Cox" } },
 *   { data: { kind: "Fuji" }, scheduleAt: "1h" },
 * ];
 * ```
 */
export interface JobInput<T = unknown> extends PutOptions {
  /** The job's data. */
  data: T;
}

/**
 * Options of `Queue.get`.
 *
 * @example Wait up to 30 seconds, or until told to stop
 * ```ts
 * import type { GetOptions } from "@pq/pq";
 *
 * const stop = new AbortController();
 * const options: GetOptions = { timeout: "30s", signal: stop.signal };
 * ```
 */
export interface GetOptions {
  /** Wait for a job when none is ready (default true). */
  block?: boolean;
  /**
   * How long a blocking get waits: milliseconds or a duration such as
   * `"30s"`. Default: the PQ's `timeout` (1 s unless set).
   */
  timeout?: DurationInput;
  /** Stops the wait; the get then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Options of `Queue.failed`.
 *
 * @example The ten oldest failures
 * ```ts
 * import type { FailedOptions } from "@pq/pq";
 *
 * const options: FailedOptions = { limit: 10 };
 * ```
 */
export interface FailedOptions {
  /** The most jobs to list, oldest first (default 1,000). */
  limit?: number;
}

/**
 * How long finished jobs stay (`createPQ`'s `keep` option): a duration, or
 * `null` for forever.
 *
 * @example Keep results a day, failures a month
 * ```ts
 * import type { KeepOptions } from "@pq/pq";
 *
 * const keep: KeepOptions = { completed: "1d", failed: "30d", cancelled: "7d" };
 * ```
 */
export interface KeepOptions {
  /**
   * Completed jobs, with their results. Default: not kept at all (deleted
   * when they complete, the fastest); `null`: forever.
   */
  completed?: DurationInput | null;
  /** Failed jobs. Default: forever (`null`). */
  failed?: DurationInput | null;
  /** Cancelled jobs. Default `"7d"`. */
  cancelled?: DurationInput | null;
}

/**
 * Options of `Queue.size`.
 *
 * @example Count the jobs of one task
 * ```ts
 * import type { SizeOptions } from "@pq/pq";
 *
 * const options: SizeOptions = { task: "send-email" };
 * ```
 */
export interface SizeOptions {
  /** Count only the ready jobs of this task. */
  task?: string;
  /**
   * Stop counting at this many (a whole number of at least 1): the count
   * then costs the same with ten or ten million jobs waiting, while an exact
   * count reads every ready job's index entry (0.74 s at 10 million,
   * SCALING.md). For alerts and autoscaling ("more than 10,000 waiting?").
   */
  atMost?: number;
}

/**
 * A task job that used up its attempts, or a job whose data could not be
 * decoded.
 *
 * @example Report failures
 * ```ts
 * import type { FailedJob } from "@pq/pq";
 *
 * function report(job: FailedJob): string {
 *   return `${job.task} #${job.id} failed ${job.attempts} time(s): ${job.error?.message}`;
 * }
 * ```
 */
export interface FailedJob {
  /** The job's id; pass it to `Queue.retry`. */
  id: string;
  /** The queue's name. */
  queue: string;
  /** The task's name; null for a plain job (parked by `get()`). */
  task: string | null;
  /** The data, decoded; undefined when the codec cannot decode it. */
  data: unknown;
  /** The data as stored (JSON text), whether or not it decodes. */
  rawData: string;
  /** Why `data` could not be decoded now, or null. */
  decodeError: StoredError | null;
  /** How many times it ran. */
  attempts: number;
  /**
   * The last error: its message, and its name, stack and `code` when it had
   * them (`DECODE_FAILED` for a job whose data could not be decoded).
   */
  error: StoredError | null;
  /** When it was put. */
  enqueuedAt: Date;
  /** When its last run was scheduled, if it was. */
  scheduleAt: Date | null;
  /** Its expected time, if it had one. */
  expectedAt: Date | null;
  /** When it failed for good. */
  failedAt: Date;
}

/**
 * Options of `Queue.iterate`.
 *
 * @example Iterate for a minute at most
 * ```ts
 * import type { IterateOptions } from "@pq/pq";
 *
 * const options: IterateOptions = {
 *   timeout: "5s",
 *   signal: AbortSignal.timeout(60_000),
 * };
 * ```
 */
export interface IterateOptions {
  /** How long each wait lasts before the iterator yields `null`. */
  timeout?: DurationInput;
  /** Ends the iteration (without an error) when aborted. */
  signal?: AbortSignal;
}

/**
 * Options of {@linkcode createPQ}.
 *
 * @example Options for a pooler
 * ```ts
 * import type { PQOptions } from "@pq/pq";
 *
 * // Behind PgBouncer in transaction mode: no LISTEN, poll every 250 ms.
 * const options: PQOptions = {
 *   table: "jobs",
 *   schema: "app",
 *   listen: false,
 *   pollInterval: "250ms",
 *   timeout: "30s",
 * };
 * ```
 */
export interface PQOptions {
  /** The table that holds the jobs of every queue. Default `"queue"`. */
  table?: string;
  /** The table's schema. Default: the first schema of the search path. */
  schema?: string;
  /** Encodes job data to JSON text. Default: a strict `JSON.stringify`. */
  encode?: (data: unknown) => string;
  /** Decodes the stored JSON text. Default: `JSON.parse`. */
  decode?: (text: string) => unknown;
  /**
   * More codecs, chosen by a queue name's suffix: with `{ csv: myCodec }`,
   * `pq.queue("reports/csv")` is the queue `reports` using `myCodec`. Built
   * in: `json` (the default) and `pickle` (keeps Date, BigInt, Map, Set,
   * typed arrays, undefined, NaN and ±Infinity).
   */
  codecs?: Record<string, Codec>;
  /** The default timeout of a blocking get. Default `"1s"`. */
  timeout?: DurationInput;
  /**
   * LISTEN for notifications (default true). Set false behind a
   * transaction-mode pooler (PgBouncer, Supavisor), where LISTEN never
   * fires: blocking gets then poll every `pollInterval`.
   */
  listen?: boolean;
  /**
   * How often waiting getters poll: the only wake-up without LISTEN, and a
   * safety net with it. One query per interval per PQ, whatever the number
   * of waiters. Default `"1s"`.
   */
  pollInterval?: DurationInput;
  /**
   * When the server's autovacuum is off and this client owns the table,
   * VACUUM it after many jobs were taken (default true): see `src/vacuum.ts`.
   * With autovacuum on, pq leaves it to the server.
   */
  vacuum?: boolean;
  /**
   * How long finished jobs stay in the table, for `queue.job(id)`,
   * `waitFor()` and `failed()`: `completed` (default: not kept; deleted at
   * once, the fastest), `failed` (default: forever), `cancelled` (default
   * `"7d"`). Kept completed jobs have the handler's return value as their
   * result. Workers remove older ones in small batches, one at a time per
   * table; `pq.prune()` does it at once.
   */
  keep?: KeepOptions;
  /**
   * Traces and metrics through OpenTelemetry when the optional package
   * `@opentelemetry/api` is installed (default true): a span for each put
   * and each job run, the trace context stored with the job, job counts
   * and durations. False never loads the package. See the README's
   * "OpenTelemetry".
   */
  telemetry?: boolean;
  /**
   * Hears what goes wrong away from any caller, as a `PQError`: background
   * failures (`BACKGROUND`: the listener cannot connect or register, a poll
   * or a vacuum fails, with the driver's error as `cause`), jobs parked
   * because their data cannot be decoded (`DECODE_FAILED`), a worker that
   * fills its pool (`POOL_TOO_SMALL`). Default: a console warning, at most
   * once a minute for each distinct message.
   */
  onError?: (error: Error) => void;
}

/**
 * Options of {@linkcode PQ.queue}.
 *
 * @example A queue name with a slash
 * ```ts
 * import type { QueueOptions } from "@pq/pq";
 *
 * const options: QueueOptions = { codec: "json" }; // "reports/2024" is the name
 * ```
 */
export interface QueueOptions {
  /**
   * The codec, by name (`"json"`, `"pickle"` or one of `codecs`). When set,
   * the whole name is the queue's name, even if it contains a `/`.
   */
  codec?: string;
  /**
   * A Standard Schema (Zod, Valibot, ArkType, ...) for the jobs' data:
   * `put()` refuses data that does not match it, and `get()` returns its
   * output. Types follow it.
   */
  schema?: Schema;
}

/**
 * Options of a task: its default times and its retry policy.
 *
 * @example Retry three times, backing off
 * ```ts
 * import type { TaskOptions } from "@pq/pq";
 *
 * const options: TaskOptions = {
 *   maxRetries: 3,
 *   retryIn: "10s",
 *   backoff: "exponential",
 *   expectedAt: "1h",
 * };
 * ```
 */
export interface TaskOptions extends PutOptions {
  /** How many times a failed run is retried (default 0: one run only). */
  maxRetries?: number;
  /** How long after a failure to retry (default `"30s"`). */
  retryIn?: DurationInput;
  /**
   * `"fixed"` (default) waits `retryIn` each time; `"exponential"` doubles
   * it after each failure, with jitter (between half and all of the
   * doubled delay), up to one day.
   */
  backoff?: "fixed" | "exponential";
  /**
   * A Standard Schema (Zod, Valibot, ArkType, ...) for the task's argument:
   * calls refuse arguments that do not match it, and the handler gets its
   * output. A job whose stored argument does not match when it is taken
   * fails at once, with the issues, without retries.
   */
  schema?: Schema;
  /**
   * Lease mode, for long jobs: the claim commits at once and the handler
   * runs with no transaction open, while the worker renews the job's lease
   * (every third of it). If the worker dies, another takes the job again
   * once the lease ends, as a new attempt. At least `"1s"`. Without it, the
   * handler runs inside the job's transaction (`job.tx`).
   */
  lease?: DurationInput;
  /**
   * At most this many jobs of the task run at once, all processes
   * together (a whole number, at least 1). A slot frees when its job ends
   * in any way, a crash included.
   */
  concurrency?: number;
  /**
   * The group of a job, from its argument (a per-call `group` overrides
   * it). At most `groupConcurrency` jobs of one group run at once; with 1,
   * a group's jobs start one by one in the queue's order, a job waiting
   * for its retry keeping its group's turn.
   */
  // deno-lint-ignore no-explicit-any
  group?: (args: any) => string;
  /**
   * At most this many jobs of one group run at once (default 1 when
   * `group` is given).
   */
  groupConcurrency?: number;
  /** At most `limit` jobs start in any window of `per`, all processes. */
  rateLimit?: RateLimit;
}

/**
 * The options of one call of a task: a put's, and the job's group.
 *
 * @example One customer's jobs, one at a time
 * ```ts
 * import type { TaskPutOptions } from "@pq/pq";
 *
 * const options: TaskPutOptions = { group: "customer:42", expectedAt: "1m" };
 * ```
 */
export interface TaskPutOptions extends PutOptions {
  /**
   * The job's group, overriding the task's `group` function. The task must
   * have a `group` or a `groupConcurrency`.
   */
  group?: string;
}

/**
 * The states of a job, as `queue.job(id)` reports them.
 *
 * - `ready`: can be taken now; `scheduled`: waits for its time (or a retry);
 * - `running`: a worker runs it (in lease mode, or inside a transaction that
 *   took it);
 * - `completed` (kept only with `keep.completed`), `failed`, `cancelled`.
 *
 * @example
 * ```ts
 * import type { JobState } from "@pq/pq";
 *
 * const finished = (state: JobState) =>
 *   state === "completed" || state === "failed" || state === "cancelled";
 * ```
 */
export type JobState =
  | "ready"
  | "scheduled"
  | "running"
  | "completed"
  | "failed"
  | "cancelled";

/**
 * A job as `queue.job(id)` and `queue.waitFor(id)` see it.
 *
 * @example Show a job's state
 * ```ts
 * import type { JobInfo } from "@pq/pq";
 *
 * const line = (job: JobInfo) =>
 *   `#${job.id} ${job.task ?? "(plain)"} ${job.state}, attempt ${job.attempt}`;
 * ```
 */
export interface JobInfo {
  /** The job's id. */
  id: string;
  /** The queue's name. */
  queue: string;
  /** The task's name; null for a plain job (from `put()`). */
  task: string | null;
  /** Its unique key, if it was put with one. */
  key: string | null;
  /** Its flow-control group, if its task has groups. */
  group: string | null;
  /** Where it is in its life. */
  state: JobState;
  /** The data, decoded; undefined if the codec cannot decode it. */
  data: unknown;
  /** The data as stored (JSON text). */
  rawData: string;
  /** How many attempts started (0 before the first). */
  attempt: number;
  /** The most attempts it gets (its task's `maxRetries` + 1), once known. */
  maxAttempts: number | null;
  /** What the handler last reported with `job.progress()`. */
  progress: unknown;
  /** What the handler returned, kept with `keep.completed`. */
  result: unknown;
  /** The last error, if an attempt failed. */
  error: StoredError | null;
  /** When it was put. */
  enqueuedAt: Date;
  /** When it was (or is) scheduled to become ready. */
  scheduleAt: Date | null;
  /** Its expected time (its priority). */
  expectedAt: Date | null;
  /** When its last attempt started. */
  startedAt: Date | null;
  /** When it ended. */
  finishedAt: Date | null;
}

/**
 * Options of `Queue.waitFor`.
 *
 * @example Wait half a minute at most
 * ```ts
 * import type { WaitForOptions } from "@pq/pq";
 *
 * const options: WaitForOptions = { timeout: "30s" };
 * ```
 */
export interface WaitForOptions {
  /** How long to wait; default: until the job ends (or `signal` aborts). */
  timeout?: DurationInput;
  /** Stops the wait; `waitFor()` then rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/**
 * Options of `Queue.schedule`.
 *
 * @example Every night at three in Oslo, catching up on the last day
 * ```ts
 * import type { ScheduleOptions } from "@pq/pq";
 *
 * const options: ScheduleOptions = {
 *   args: { team: "a" },
 *   timezone: "Europe/Oslo",
 *   backfill: "1d",
 * };
 * ```
 */
export interface ScheduleOptions {
  /** The task's argument for every tick (default `{}`). */
  args?: unknown;
  /** The time zone the cron expression is read in (default UTC). */
  timezone?: string;
  /**
   * When ticks were missed (no worker ran), enqueue every tick of this last
   * window, oldest first, at most 1,000; by default only the latest.
   */
  backfill?: DurationInput;
  /** Store it paused (default: as it is, or running for a new one). */
  paused?: boolean;
}

/**
 * A schedule as `Queue.schedules` lists it.
 *
 * @example When does each run next
 * ```ts
 * import type { ScheduleInfo } from "@pq/pq";
 *
 * const line = (s: ScheduleInfo) =>
 *   `${s.name} (${s.cron}): next ${s.paused ? "paused" : s.nextAt.toISOString()}`;
 * ```
 */
export interface ScheduleInfo {
  /** Its name, unique per queue. */
  name: string;
  /** The cron expression. */
  cron: string;
  /** Its time zone; null: UTC. */
  timezone: string | null;
  /** The task each tick enqueues. */
  task: string;
  /** The task's argument, decoded. */
  args: unknown;
  /** The backfill window in ms; null: only the latest missed tick. */
  backfillMs: number | null;
  /** Its next tick. */
  nextAt: Date;
  /** Its last enqueued tick. */
  lastAt: Date | null;
  /** Paused schedules enqueue nothing. */
  paused: boolean;
}
