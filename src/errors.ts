/**
 * The error class callers catch, with a stable code for every failure that
 * is pq's own. Bad arguments stay `TypeError` and `RangeError`; errors of the
 * driver and the server (postgres.js `PostgresError`, with its SQLSTATE) reach
 * the caller as they are, or as the `cause` of a `PQError`.
 *
 * @module
 */

/**
 * The codes of {@linkcode PQError}. Stable: match on them, not on messages.
 *
 * - `CLOSED`: the PQ was closed; nothing was done.
 * - `DUPLICATE_TASK`: a queue already has a task of that name.
 * - `SCHEMA_TOO_NEW`: the table or the schema's shared objects were created
 *   by a newer pq; upgrade pq.
 * - `FORCED_STOP`: the worker's grace period ended while the handler ran.
 * - `CONNECTION_LOST`: the connection of a job's transaction closed mid-job,
 *   or a worker's transaction did not begin within the client's
 *   `connect_timeout` + 5 s (an `error` event; the worker tries again).
 * - `DECODE_FAILED`: a job's stored data could not be decoded; the job is
 *   kept as failed with its text.
 * - `INVALID_DATA`: a job's stored data does not match its task's or queue's
 *   schema when taken; the job is kept as failed with the schema's issues.
 * - `TRANSACTION_ENDED`: a queue, task or `job.tx` bound to a transaction was
 *   used after that transaction ended.
 * - `POOL_TOO_SMALL`: a worker fills (a warning) or exceeds (an error) the
 *   client's pool.
 * - `CANCELLED`: the job was cancelled while it ran (its `job.signal`'s
 *   reason).
 * - `LEASE_LOST`: a lease job's lease could not be renewed before it ended,
 *   or another worker has the job now (its `job.signal`'s reason, and what
 *   `job.complete(tx)` throws); the worker writes nothing for the attempt.
 * - `LEASE_EXPIRED`: stored on a lease job that was taken again because its
 *   worker died or stopped, and on the failed job once that used up its
 *   attempts.
 * - `MISSING_DEPENDENCY`: a feature needs an optional package that is not
 *   installed (schedules need `croner`).
 * - `BACKGROUND`: a failure of pq's background work (listening, polling,
 *   vacuum), reported to `onError`; the `cause` is the driver's error.
 *
 * @example Handle the codes you expect
 * ```ts
 * import type { PQErrorCode } from "@pq/pq";
 *
 * function retryable(code: PQErrorCode): boolean {
 *   return code === "CONNECTION_LOST" || code === "BACKGROUND";
 * }
 * ```
 */
export type PQErrorCode =
  | "CLOSED"
  | "DUPLICATE_TASK"
  | "SCHEMA_TOO_NEW"
  | "FORCED_STOP"
  | "CONNECTION_LOST"
  | "DECODE_FAILED"
  | "INVALID_DATA"
  | "TRANSACTION_ENDED"
  | "POOL_TOO_SMALL"
  | "CANCELLED"
  | "LEASE_LOST"
  | "LEASE_EXPIRED"
  | "MISSING_DEPENDENCY"
  | "BACKGROUND";

/**
 * Options of {@linkcode PQError}.
 *
 * @example An error about a job, with its cause
 * ```ts
 * import { PQError, type PQErrorOptions } from "@pq/pq";
 *
 * const options: PQErrorOptions = { jobId: "42", cause: new SyntaxError("bad JSON") };
 * const error = new PQError("DECODE_FAILED", "Cannot decode job 42", options);
 * ```
 */
export interface PQErrorOptions {
  /** The error that caused this one (a driver error, a decode error). */
  cause?: unknown;
  /** The job the error is about, if any. */
  jobId?: string;
}

/**
 * An error of pq's own, with a stable `code`.
 *
 * @example Tell a closed PQ from other failures
 * ```ts
 * import postgres from "postgres";
 * import { createPQ, PQError } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples" });
 * await pq.close();
 * try {
 *   await pq.queue("apples").put({ kind: "Cox" });
 * } catch (error) {
 *   assert.ok(error instanceof PQError);
 *   assert.equal(error.code, "CLOSED");
 * }
 * await sql.end();
 * ```
 */
export class PQError extends Error {
  /** What went wrong, as a stable code. */
  readonly code: PQErrorCode;
  /** The job the error is about, if any. */
  readonly jobId: string | undefined;

  /**
   * Makes an error with a code; pq makes these, callers match on `code`.
   *
   * @param code The stable code.
   * @param message What happened, naming the values involved.
   * @param options The `cause` and the job's id.
   */
  constructor(code: PQErrorCode, message: string, options?: PQErrorOptions) {
    super(
      message,
      options?.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = "PQError";
    this.code = code;
    this.jobId = options?.jobId;
  }
}

/** Throws `CLOSED` when the PQ is closed: "Cannot put job: this PQ is closed". */
export function assertOpen(core: { closed: boolean }, action: string): void {
  if (core.closed) {
    throw new PQError("CLOSED", `Cannot ${action}: this PQ is closed`);
  }
}
