/**
 * pq: a transactional job queue for PostgreSQL, on the `postgres` driver.
 *
 * One table holds the jobs of every queue. `put()` enqueues (with delays and
 * priorities), `get()` takes the next job with `FOR UPDATE SKIP LOCKED`,
 * waits on LISTEN/NOTIFY, and ends on a timeout or an `AbortSignal`. Inside a
 * transaction, taking a job, doing the work and writing the result commit
 * together, or the job goes back to the queue.
 *
 * @example Put and get a job
 * ```ts
 * import postgres from "postgres";
 * import { createPQ } from "@pq/pq";
 * import assert from "node:assert/strict";
 *
 * const sql = postgres(Deno.env.get("DATABASE_URL")!, { onnotice: () => {} });
 * const pq = createPQ(sql, { table: "pq_examples" });
 * await pq.create();
 * const apples = pq.queue<{ kind: string }>("module-apples");
 * await apples.put({ kind: "Cox" });
 * const job = await apples.get();
 * assert.equal(job?.data.kind, "Cox");
 * await pq.close();
 * await sql.end();
 * ```
 *
 * @module
 */

export { createPQ, PQ } from "./src/create_pq.ts";
export { Queue } from "./src/queue.ts";
export { PQError } from "./src/errors.ts";
export type { PQErrorCode, PQErrorOptions } from "./src/errors.ts";
export type { StoredError } from "./src/stored_error.ts";
export type {
  FailedJob,
  FailedOptions,
  GetOptions,
  IterateOptions,
  JobInfo,
  JobInput,
  JobState,
  KeepOptions,
  PQOptions,
  PutOptions,
  QueueOptions,
  ScheduleInfo,
  ScheduleOptions,
  SizeOptions,
  TaskOptions,
  TaskPutOptions,
  WaitForOptions,
} from "./src/options.ts";
export type { Task, TaskHandler, TaskInput } from "./src/tasks.ts";
export type { RateLimit } from "./src/limits.ts";
export { Snooze } from "./src/task_job.ts";
export type { JobFor, LeaseJob, RunningJob, TaskJob } from "./src/task_job.ts";
export type {
  WorkEvent,
  WorkEventJob,
  WorkOptions,
  WorkStats,
} from "./src/work_options.ts";
export { Job } from "./src/job.ts";
export type {
  CountKind,
  MinuteCounts,
  PQStats,
  QueueStats,
  StatCount,
  StatsOptions,
  TaskStats,
} from "./src/stats.ts";
export { assertStorable, jsonCodec } from "./src/codecs.ts";
export { richCodec } from "./src/pickle.ts";
export type { Codec } from "./src/codecs.ts";
export { parseDuration, resolveTime } from "./src/duration.ts";
export type {
  Schema,
  SchemaInput,
  SchemaIssue,
  SchemaOutput,
  SchemaProps,
  SchemaResult,
  SchemaTypes,
} from "./src/validation.ts";
export type { DurationInput, TimeInput } from "./src/duration.ts";
export type { Sql, TransactionSql } from "./src/types.ts";
