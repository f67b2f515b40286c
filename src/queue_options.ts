/**
 * The options and results of a queue's methods.
 *
 * @module
 */

import type { DurationInput, TimeInput } from "./duration.ts";
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
