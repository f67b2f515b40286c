/**
 * The options of pq's calls, and the results of a queue's listings (the
 * options of `work()` are in `work_options.ts`, with their reading).
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { DurationInput, TimeInput } from "./duration.ts";
import type { Schema } from "./validation.ts";
import type { StoredError } from "./stored_error.ts";

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
}
