/**
 * Reading a taken job's data without ever losing the job: data that the
 * codec refuses (a custom `decode` that throws, a `/pickle` row with an
 * unknown tag, a row written by another program) or that does not match the
 * queue's or task's schema is kept as a failed job with its text and the
 * error, where `failed()` lists it and `retry()` brings it back once the
 * code can read it.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { PQCore } from "./core.ts";
import { PQError } from "./errors.ts";
import type { FailedJob } from "./options.ts";
import type { TableNames } from "./schema.ts";
import {
  type FailedRow,
  finishBatch,
  type JobRecord,
  returnJob,
  storeJob,
} from "./sql/manage_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import {
  type StoredError,
  storedError,
  storedErrorJson,
} from "./stored_error.ts";
import type { Executor } from "./types.ts";
import { check, type Schema } from "./validation.ts";

/** Where a job was taken: enough to decode it and to write it back. */
export interface DecodeOrigin {
  /** The table's names. */
  names: TableNames;
  /** The codec of the job's queue or task. */
  codec: Codec;
  /** The schema its data must match, if any. */
  schema: Schema | null;
  /** The queue's name. */
  queue: string;
}

/** The stored fields of a taken row, to write it back. */
export function recordOf(queue: string, row: TakenRow): JobRecord {
  return {
    id: row.id,
    queue,
    task: row.task,
    data: row.data,
    attempts: row.attempts,
    enqueuedAt: row.enqueuedAt,
    scheduleAt: row.scheduleAt,
    expectedAt: row.expectedAt,
    key: row.key,
    group: row.group,
    trace: row.trace,
  };
}

/** The `DECODE_FAILED` error of a job whose data `decode` refused. */
export function decodeError(
  queue: string,
  id: string,
  cause: unknown,
): PQError {
  return new PQError(
    "DECODE_FAILED",
    `Cannot decode job ${id} of queue ${JSON.stringify(queue)}: ${
      storedError(cause).message
    }; it is kept as a failed job with its data`,
    { cause, jobId: id },
  );
}

/** The `INVALID_DATA` error of a job whose data fails its schema. */
export function invalidDataError(
  queue: string,
  id: string,
  problem: string,
): PQError {
  return new PQError(
    "INVALID_DATA",
    `Job ${id} of queue ${
      JSON.stringify(queue)
    } does not match its schema: ${problem}; it is kept as a failed job with its data`,
    { jobId: id },
  );
}

/**
 * Decodes a job's data and validates it against the schema, if any.
 * Returns the data (the schema's output), or the error that makes the job
 * unreadable.
 */
export async function readJobData(
  origin: DecodeOrigin,
  row: TakenRow,
): Promise<{ data: unknown } | { error: PQError }> {
  let data: unknown;
  try {
    data = origin.codec.decode(row.data);
  } catch (cause) {
    return { error: decodeError(origin.queue, row.id, cause) };
  }
  if (!origin.schema) return { data };
  const checked = await check(origin.schema, data);
  return "problem" in checked
    ? { error: invalidDataError(origin.queue, row.id, checked.problem) }
    : { data: checked.value };
}

/**
 * Reads a row taken on `db` (see {@linkcode readJobData}). When it cannot
 * be read, stores the job as failed on `db` (in the same transaction when
 * `db` is one), reports it to the PQ's `onError`, and returns null: the
 * caller moves on.
 *
 * @throws {PQError} `DECODE_FAILED` or `INVALID_DATA`, naming the job and
 * its data, when the job could not even be stored as failed (the connection
 * dropped).
 */
export async function readOrPark(
  core: PQCore,
  db: Executor,
  origin: DecodeOrigin,
  row: TakenRow,
): Promise<{ data: unknown } | null> {
  const read = await readJobData(origin, row);
  if ("data" in read) return read;
  const error = read.error;
  try {
    await returnJob(
      db,
      origin.names,
      recordOf(origin.queue, row),
      null,
      storedErrorJson(error),
    );
  } catch (writeError) {
    throw new PQError(
      error.code,
      `${error.message}, but it could not be kept as failed (${
        storedError(writeError).message
      }): its data is ${row.data.slice(0, 1_000)}`,
      { cause: writeError, jobId: row.id },
    );
  }
  core.report(error);
  return null;
}

/**
 * Stores a taken job that a cancel request waited for as cancelled, and
 * consumes the request (same transaction as the take, when there is one).
 */
export async function cancelTaken(
  db: Executor,
  names: TableNames,
  record: JobRecord,
): Promise<void> {
  await storeJob(db, names, record, {
    state: "cancelled",
    error: storedErrorJson(
      new PQError("CANCELLED", `Job ${record.id} was cancelled`, {
        jobId: record.id,
      }),
    ),
  });
  await finishBatch(db, names, [record.id], []);
}

/** A failed row as listed by `failed()`, decoded if the codec can. */
export function failedJobOf(row: FailedRow, codec: Codec): FailedJob {
  let data: unknown, decodeFailure: StoredError | null = null;
  try {
    data = codec.decode(row.data);
  } catch (cause) {
    decodeFailure = storedError(cause);
  }
  return {
    id: row.id,
    queue: row.queue,
    task: row.task,
    data,
    rawData: row.data,
    decodeError: decodeFailure,
    attempts: row.attempts,
    error: row.error === null ? null : JSON.parse(row.error),
    enqueuedAt: row.enqueuedAt,
    scheduleAt: row.scheduleAt,
    expectedAt: row.expectedAt,
    failedAt: row.failedAt,
  };
}
