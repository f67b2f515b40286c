/**
 * Runs one task job of a transaction-mode batch and decides how it ended:
 * done, retried, failed, snoozed or cancelled. (The worker loop that takes
 * the batches is in `worker.ts`; lease mode's executor in
 * `run_lease_job.ts`.)
 *
 * The job runs in a savepoint of the batch's transaction, opened once the
 * handler uses `job.tx` (see `savepoints.ts`). A handler that throws rolls
 * back only its savepoint; the job is then written back, for a retry or as
 * failed, in the same transaction. Whatever the handler threw is
 * stored (see `stored_error.ts`), so no thrown value can fail the batch.
 *
 * @module
 */

import { Attempt, cancelledError } from "./attempt.ts";
import type { PQCore } from "./core.ts";
import { guardTransaction } from "./job_transaction.ts";
import { readJobData, recordOf } from "./job_data.ts";
import type { SafeTransaction } from "./safe_transaction.ts";
import type { JobSavepoint, JobScope } from "./savepoints.ts";
import { restoreJobs, type StoredState, storeJob } from "./sql/manage_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import { storedErrorJson } from "./stored_error.ts";
import { Snooze } from "./task_job.ts";
import { retryDelay, type TaskRegistry } from "./tasks.ts";
import { tracedRun } from "./telemetry.ts";
import type { TransactionSql } from "./types.ts";
import type { WorkEvent, WorkStats } from "./work_options.ts";
import type { StopControl } from "./worker_stop.ts";

/** How a job ended, reported once its batch commits. */
export interface Outcome {
  /** The count it adds to, or null. */
  stat: keyof WorkStats | null;
  /** The event to emit, or null (put back unchanged). */
  event: WorkEvent | null;
  /** The final state a `waitFor()` should hear of, if it ended. */
  ended?: "completed" | "failed" | "cancelled";
  /** True when it was cancelled while it ran (a request to consume). */
  cancelled?: boolean;
}

/** What a job of one worker runs with. */
export interface JobContext {
  core: PQCore;
  queue: string;
  tasks: TaskRegistry;
  stop: StopControl;
  /** Keep completed jobs (and their results). */
  keepCompleted: boolean;
  /** The attempts running now, by job id (to cancel them, to watch them). */
  running: Map<string, Attempt>;
  /** Emits an event at once (`start`). */
  emit(event: WorkEvent): void;
  /** Learns how long handlers take, for the batch size. */
  learn(durationMs: number): void;
}

/**
 * Runs one taken job in a savepoint of `scope` and writes how it ended.
 * Rejects (so that the batch rolls back) only when the worker was forced to
 * stop or the transaction failed; a handler's failure is the job's outcome.
 *
 * @param pid The server process of the batch, to interrupt a cancelled
 * job's statement.
 */
export async function runJob(
  ctx: JobContext,
  t: SafeTransaction,
  scope: JobScope,
  row: TakenRow,
  pid: number,
): Promise<Outcome> {
  const { core, queue } = ctx;
  const definition = ctx.tasks.get(row.task ?? "");
  const record = { ...recordOf(queue, row), attempts: row.attempts + 1 };
  if (!definition) {
    // Taken only by name from the tasks registered here; never happens
    // unless the row changed meanwhile. Put it back as it was.
    await t.run(restoreJobs(t.tx, core.names, [recordOf(queue, row)]));
    return { stat: null, event: null };
  }
  const attempt = new Attempt(definition, row, queue);
  attempt.pid = pid;
  const info = attempt.info;
  const maxAttempts = definition.maxRetries + 1;
  const store = async (state: StoredState & { attempts?: number }) => {
    const { attempts, ...to } = state;
    await t.run(storeJob(
      t.tx,
      core.names,
      attempts === undefined ? record : { ...record, attempts },
      { maxAttempts, progress: attempt.progress, ...to },
    ));
  };
  if (row.cancelRequested) {
    await store({
      state: "cancelled",
      error: storedErrorJson(cancelledError(row.id)),
    });
    return {
      stat: null,
      event: { type: "cancel", job: info, durationMs: 0 },
      ended: "cancelled",
      cancelled: true,
    };
  }
  const read = await readJobData({
    names: core.names,
    codec: definition.codec,
    schema: definition.schema,
    queue,
  }, row);
  if ("error" in read) {
    // Bad data stays bad: no retries. Kept with its text for failed().
    await store({ state: "failed", error: storedErrorJson(read.error) });
    return {
      stat: "failed",
      event: { type: "failure", job: info, durationMs: 0, error: read.error },
      ended: "failed",
    };
  }
  return await runHandler(ctx, t, scope.job(), scope.tx, {
    attempt,
    args: read.data,
    store,
  });
}

/** A job whose data was read, ready for its handler. */
interface ReadJob {
  attempt: Attempt;
  args: unknown;
  /** Writes the job's outcome in the batch's transaction. */
  store: (state: StoredState & { attempts?: number }) => Promise<void>;
}

/**
 * Runs the handler of a job whose data was read, with `job.tx` on `tx` in
 * `savepoint`, and stores its outcome.
 */
async function runHandler(
  ctx: JobContext,
  t: SafeTransaction,
  savepoint: JobSavepoint,
  tx: TransactionSql,
  { attempt, args, store }: ReadJob,
): Promise<Outcome> {
  const { row, info, definition } = attempt;
  ctx.running.set(row.id, attempt);
  ctx.emit({ type: "start", job: info });
  const start = performance.now();
  const startedAt = new Date();
  let returned: unknown;
  /** When the handler settled: the release after it is not its time. */
  let end: number | null = null;
  try {
    const guard = guardTransaction(
      tx,
      `job ${row.id}`,
      () => t.dead,
      savepoint,
    );
    try {
      returned = await t.run(ctx.stop.running(
        attempt,
        tracedRun(
          ctx.core,
          ctx.queue,
          row,
          definition.name,
          () => attempt.call(args, definition.codec, { tx: guard.tx }),
        ),
      ));
    } finally {
      end = performance.now();
      guard.close();
    }
    await t.run(savepoint.release());
  } catch (error) {
    if (ctx.stop.forced) throw error; // roll the batch back
    await t.run(savepoint.rollback());
    const durationMs = (end ?? performance.now()) - start;
    ctx.learn(durationMs);
    if (attempt.stopped?.code === "CANCELLED") {
      // Its writes rolled back; it ends cancelled, never retried.
      await store({
        state: "cancelled",
        error: storedErrorJson(error),
        startedAt,
      });
      return {
        stat: null,
        event: { type: "cancel", job: info, durationMs },
        ended: "cancelled",
        cancelled: true,
      };
    }
    const retry = info.attempt <= definition.maxRetries;
    const retryInMs = retry ? retryDelay(definition, info.attempt) : 0;
    await store({
      state: retry ? (retryInMs > 0 ? "scheduled" : "ready") : "failed",
      delayMs: retryInMs,
      error: storedErrorJson(error),
      startedAt,
    });
    return retry
      ? {
        stat: "retried",
        event: { type: "retry", job: info, durationMs, error, retryInMs },
      }
      : {
        stat: "failed",
        event: { type: "failure", job: info, durationMs, error },
        ended: "failed",
      };
  } finally {
    ctx.running.delete(row.id);
  }
  const durationMs = (end ?? performance.now()) - start;
  ctx.learn(durationMs);
  if (returned instanceof Snooze) {
    // Its writes are kept; the attempt is not counted.
    await store({
      state: returned.delayMs > 0 ? "scheduled" : "ready",
      delayMs: returned.delayMs,
      startedAt,
      attempts: row.attempts,
    });
    return {
      stat: null,
      event: {
        type: "snooze",
        job: info,
        durationMs,
        delayMs: returned.delayMs,
      },
    };
  }
  if (ctx.keepCompleted) {
    await store({
      state: "completed",
      result: encodeResult(ctx, definition.codec, returned, row.id),
      startedAt,
    });
  }
  return {
    stat: "done",
    event: { type: "success", job: info, durationMs },
    ended: "completed",
  };
}

/** The handler's result as JSON text; null (and a report) if unstorable. */
export function encodeResult(
  ctx: { core: PQCore },
  codec: { encode(value: unknown): string },
  value: unknown,
  id: string,
): string | null {
  if (value === undefined) return null;
  try {
    return codec.encode(value);
  } catch (error) {
    ctx.core.report(
      Object.assign(
        new Error(
          `The result of job ${id} cannot be stored, so it is kept without one: ${
            (error as Error).message
          }`,
        ),
        { cause: error },
      ),
    );
    return null;
  }
}
