/**
 * Runs one task job of a batch and decides how it ended: done, put back for
 * a retry, or failed. (The worker loop that takes the batches is in
 * `worker.ts`.)
 *
 * The job runs in a savepoint of the batch's transaction. A handler that
 * throws rolls back only its savepoint; the job is then written back, for a
 * retry or as failed, in the same transaction. Whatever the handler threw is
 * stored (see `stored_error.ts`), so no thrown value can fail the batch.
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import type { PQError } from "./errors.ts";
import { guardTransaction } from "./job_transaction.ts";
import { readJobData, recordOf } from "./job_data.ts";
import type { SafeTransaction } from "./safe_transaction.ts";
import type { Savepoint } from "./savepoints.ts";
import { restoreJobs, returnJob } from "./sql/manage_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import { storedErrorJson } from "./stored_error.ts";
import {
  retryDelay,
  type TaskDefinition,
  type TaskJob,
  type TaskRegistry,
} from "./tasks.ts";
import type { TransactionSql } from "./types.ts";
import type { WorkEvent, WorkEventJob, WorkStats } from "./work_options.ts";
import type { StopControl } from "./worker_stop.ts";

/** How a job ended, reported once its batch commits. */
export interface Outcome {
  /** The count it adds to, or null (put back unchanged). */
  stat: keyof WorkStats | null;
  /** The event to emit. */
  event: WorkEvent | null;
}

/** What a job of one worker runs with. */
export interface JobContext {
  core: PQCore;
  queue: string;
  tasks: TaskRegistry;
  stop: StopControl;
  /** Emits an event at once (`start`). */
  emit(event: WorkEvent): void;
  /** Learns how long handlers take, for the batch size. */
  learn(durationMs: number): void;
}

/**
 * Runs one taken job in `savepoint` and writes how it ended. Rejects (so
 * that the batch rolls back) only when the worker was forced to stop or the
 * transaction failed; a handler's failure is the job's outcome.
 *
 * @param started The jobs whose handler started, to report if the batch
 * rolls back.
 */
export async function runJob(
  ctx: JobContext,
  t: SafeTransaction,
  savepoint: Savepoint,
  row: TakenRow,
  started: WorkEventJob[],
): Promise<Outcome> {
  const { core, queue } = ctx;
  const task = row.task ?? "";
  const attempt = row.attempts + 1;
  const info: WorkEventJob = { id: row.id, queue, task, attempt };
  const record = { ...recordOf(queue, row), attempts: attempt };
  const definition = ctx.tasks.get(task);
  if (!definition) {
    // Taken only by name from the tasks registered here; never happens
    // unless the row changed meanwhile. Put it back as it was.
    await t.run(savepoint.skip());
    await t.run(restoreJobs(t.tx, core.names, [recordOf(queue, row)]));
    return { stat: null, event: null };
  }
  const read = await readJobData({
    names: core.names,
    codec: definition.codec,
    schema: definition.schema,
    queue,
  }, row);
  if ("error" in read) {
    // Bad data stays bad: no retries. Kept with its text for failed().
    const error = read.error;
    await t.run(savepoint.skip());
    await t.run(
      returnJob(t.tx, core.names, record, null, storedErrorJson(error)),
    );
    return {
      stat: "failed",
      event: { type: "failure", job: info, durationMs: 0, error },
    };
  }
  started.push(info);
  ctx.emit({ type: "start", job: info });
  const start = performance.now();
  try {
    await t.run(
      savepoint.use((sp) =>
        t.run(
          runHandler(ctx, definition, read.data, sp, () => t.dead, row, info),
        )
      ),
    );
    const durationMs = performance.now() - start;
    ctx.learn(durationMs);
    return {
      stat: "done",
      event: { type: "success", job: info, durationMs },
    };
  } catch (error) {
    if (ctx.stop.forced) throw error; // roll the batch back
    const durationMs = performance.now() - start;
    ctx.learn(durationMs);
    const retry = attempt <= definition.maxRetries;
    const retryInMs = retry ? retryDelay(definition, attempt) : null;
    await t.run(
      returnJob(t.tx, core.names, record, retryInMs, storedErrorJson(error)),
    );
    return retry
      ? {
        stat: "retried",
        event: {
          type: "retry",
          job: info,
          durationMs,
          error,
          retryInMs: retryInMs!,
        },
      }
      : {
        stat: "failed",
        event: { type: "failure", job: info, durationMs, error },
      };
  }
}

/** Calls the handler, unless and until the worker is forced to stop. */
async function runHandler(
  ctx: JobContext,
  definition: TaskDefinition,
  args: unknown,
  sp: TransactionSql,
  isDead: () => boolean,
  row: TakenRow,
  info: WorkEventJob,
): Promise<void> {
  if (ctx.stop.forced) throw ctx.stop.forced;
  const running = new AbortController();
  const guard = guardTransaction(sp, `job ${row.id}`, isDead);
  const job: TaskJob = {
    id: row.id,
    queue: ctx.queue,
    task: info.task,
    attempt: info.attempt,
    signal: running.signal,
    tx: guard.tx,
    enqueuedAt: row.enqueuedAt,
    scheduleAt: row.scheduleAt,
    expectedAt: row.expectedAt,
  };
  let giveUp!: (reason: PQError) => void;
  const forced = new Promise<never>((_, reject) => (giveUp = reject));
  try {
    await ctx.stop.running(
      {
        force(reason) {
          running.abort(reason);
          giveUp(reason);
        },
      },
      Promise.race([
        forced,
        Promise.resolve().then(() => definition.handler(args, job)),
      ]),
    );
  } finally {
    guard.close();
  }
}
