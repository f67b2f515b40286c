/**
 * The options, counts and events of `queue.work()`, and the reading of the
 * options.
 *
 * @module
 */

import { describe } from "./describe.ts";
import { type DurationInput, parseDuration } from "./duration.ts";
import { withAction } from "./new_jobs.ts";
import { checkBoolean, checkOptions, checkSignal } from "./check_options.ts";

/**
 * Options of `Queue.work`.
 *
 * @example A worker for a serverless function
 * ```ts
 * import type { WorkOptions } from "@pq/pq";
 *
 * const options: WorkOptions = {
 *   burst: true, // return once no job is ready
 *   signal: AbortSignal.timeout(25_000), // and before the platform's deadline
 *   concurrency: 4,
 *   gracePeriod: "3s",
 * };
 * ```
 */
export interface WorkOptions {
  /** How many jobs run at the same time (default 1). */
  concurrency?: number;
  /** Stops the worker: no new jobs, then the grace period. */
  signal?: AbortSignal;
  /** Resolve as soon as no job is ready, instead of waiting for more. */
  burst?: boolean;
  /**
   * After `signal` aborts, how long running handlers may take to finish
   * before their `job.signal` aborts and their transactions roll back
   * (default `"10s"`).
   */
  gracePeriod?: DurationInput;
  /**
   * The most jobs one transaction takes and commits (default 32). Batches
   * are smaller when handlers are slow; 1 gives a transaction per job.
   */
  batchSize?: number;
  /**
   * Called on each job's start, success, retry, failure and abort, and on
   * the worker's errors. By default failures and errors go to the console.
   * An abort's error has the code `FORCED_STOP` when the grace period
   * ended, and `CONNECTION_LOST` when the job's connection closed.
   */
  onEvent?: (event: WorkEvent) => void;
}

/**
 * How many jobs a `work()` call ran to each end.
 *
 * @example Log a run
 * ```ts
 * import type { WorkStats } from "@pq/pq";
 *
 * const log = ({ done, retried, failed }: WorkStats) =>
 *   console.log(`${done} done, ${retried} retried, ${failed} failed`);
 * log({ done: 3, retried: 1, failed: 0 });
 * ```
 */
export interface WorkStats {
  /** Jobs whose handler succeeded (and whose transaction committed). */
  done: number;
  /** Failed runs that were put back for a retry. */
  retried: number;
  /** Jobs stored as failed: out of retries, or no such task. */
  failed: number;
}

/**
 * The job an event is about.
 *
 * @example Name a job in a log line
 * ```ts
 * import type { WorkEventJob } from "@pq/pq";
 *
 * const name = (job: WorkEventJob) => `${job.queue}/${job.task}#${job.id} (try ${job.attempt})`;
 * ```
 */
export interface WorkEventJob {
  /** The job's id. */
  id: string;
  /** The queue's name. */
  queue: string;
  /** The task's name. */
  task: string;
  /** The run: 1 for the first. */
  attempt: number;
}

/**
 * What happened to a job, reported to `onEvent`.
 *
 * @example Send events to your logger
 * ```ts
 * import type { WorkEvent } from "@pq/pq";
 *
 * function onEvent(event: WorkEvent): void {
 *   if (event.type === "failure") console.error(event.job.id, event.error);
 *   if (event.type === "success") console.log(event.job.id, `${event.durationMs} ms`);
 * }
 * ```
 */
export type WorkEvent =
  | { type: "start"; job: WorkEventJob }
  | { type: "success"; job: WorkEventJob; durationMs: number }
  | {
    type: "retry";
    job: WorkEventJob;
    durationMs: number;
    error: unknown;
    retryInMs: number;
  }
  | { type: "failure"; job: WorkEventJob; durationMs: number; error: unknown }
  | { type: "abort"; job: WorkEventJob; error: unknown }
  | { type: "error"; error: unknown };

/** The options of a worker, checked and with their defaults. */
export interface WorkSettings {
  concurrency: number;
  batchSize: number;
  burst: boolean;
  signal: AbortSignal | undefined;
  gracePeriodMs: number;
  onEvent: (event: WorkEvent) => void;
}

const WORK_OPTIONS = [
  "concurrency",
  "signal",
  "burst",
  "gracePeriod",
  "batchSize",
  "onEvent",
] as const;

/**
 * Reads the options of `work()`.
 *
 * @throws {TypeError} If an option is unknown or invalid, naming it.
 */
export function readWorkOptions(
  options: WorkOptions | undefined,
): WorkSettings {
  try {
    const o = checkOptions(options, WORK_OPTIONS);
    if (o.onEvent !== undefined && typeof o.onEvent !== "function") {
      throw new TypeError(
        `'onEvent' must be a function: received ${describe(o.onEvent)}`,
      );
    }
    return {
      concurrency: positiveInteger(o.concurrency ?? 1, "concurrency"),
      batchSize: positiveInteger(o.batchSize ?? 32, "batchSize"),
      burst: checkBoolean(o.burst, "burst") ?? false,
      signal: checkSignal(o.signal),
      gracePeriodMs: parseDuration(o.gracePeriod ?? "10s", "gracePeriod"),
      onEvent: o.onEvent ?? logFailures,
    };
  } catch (error) {
    withAction("work", error);
  }
}

/** The default `onEvent`: failures and worker errors go to the console. */
function logFailures(event: WorkEvent): void {
  if (event.type === "failure") {
    console.error(
      `pq: job ${event.job.id} of task ${
        JSON.stringify(event.job.task)
      } failed after ${event.job.attempt} attempt(s):`,
      event.error,
    );
  } else if (event.type === "error") {
    console.error("pq: the worker will try again after an error:", event.error);
  }
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(
      `'${name}' must be a whole number of at least 1: received ${
        describe(value)
      }`,
    );
  }
  return value;
}
