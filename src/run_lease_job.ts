/**
 * Runs one claimed lease job and decides its outcome (lease mode: the claim
 * has committed; the handler runs with no transaction open). The outcome is
 * written later, with the batch's others, by one fenced statement
 * (`finishLeaseJobs`), so that a worker that lost the lease writes nothing.
 *
 * @module
 */

import { Attempt, cancelledError, leaseLostError } from "./attempt.ts";
import { readJobData } from "./job_data.ts";
import type { LeaseKeeper } from "./lease_keeper.ts";
import type { JobContext, Outcome } from "./run_job.ts";
import { encodeResult } from "./run_job.ts";
import {
  completeLeaseJob,
  type LeaseOutcome,
  saveLeaseProgress,
} from "./sql/lease_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import { storedErrorJson } from "./stored_error.ts";
import { Snooze } from "./task_job.ts";
import { retryDelay } from "./tasks.ts";
import { tracedRun } from "./telemetry.ts";
import type { TransactionSql } from "./types.ts";

/** What a lease job's run decided: the event, and the write, if any. */
export interface LeaseRun {
  result: Outcome;
  /** What to write, fenced by the token; null: nothing (lease lost). */
  write: Omit<LeaseOutcome, "id" | "token"> | null;
}

/** Puts a claimed job back as it was, the attempt not counted. */
export const RELEASE: Omit<LeaseOutcome, "id" | "token"> = {
  outcome: "snooze",
  delayMs: 0,
  error: null,
  result: null,
  progress: null,
};

/** Runs a claimed lease job (`token`: its claim's fencing token). */
export async function runLeaseJob(
  ctx: JobContext,
  keeper: LeaseKeeper,
  row: TakenRow,
  token: string,
): Promise<LeaseRun> {
  const { core, queue } = ctx;
  const definition = ctx.tasks.get(row.task ?? "");
  if (!definition) {
    return { result: { stat: null, event: null }, write: RELEASE };
  }
  const attempt = new Attempt(definition, row, queue);
  const info = attempt.info;
  const empty = { error: null, result: null, progress: null, delayMs: null };
  const early = keeper.stoppedOf(row.id) ??
    (row.cancelRequested ? cancelledError(row.id) : null);
  if (early) return stoppedRun(attempt, early, 0);
  const read = await readJobData({
    names: core.names,
    codec: definition.codec,
    schema: definition.schema,
    queue,
  }, row);
  if ("error" in read) {
    // Bad data stays bad: no retries. Kept with its text for failed().
    return {
      result: {
        stat: "failed",
        event: { type: "failure", job: info, durationMs: 0, error: read.error },
      },
      write: { ...empty, outcome: "fail", error: storedErrorJson(read.error) },
    };
  }
  attempt.progressWriter = async (json) => {
    const held = await saveLeaseProgress(
      core.listener.client(),
      core.names,
      row.id,
      token,
      json,
    );
    if (!held) {
      keeper.stop(row.id, leaseLostError(row.id, "another worker has it"));
    }
  };
  const stopped = keeper.attach(row.id, attempt);
  if (stopped) return stoppedRun(attempt, stopped, 0);
  ctx.running.set(row.id, attempt);
  ctx.emit({ type: "start", job: info });
  const start = performance.now();
  let returned: unknown;
  try {
    returned = await ctx.stop.running(
      attempt,
      tracedRun(
        core,
        queue,
        row,
        definition.name,
        () =>
          attempt.call(read.data, definition.codec, {
            complete: async (tx: TransactionSql, result?: unknown) => {
              const kept = ctx.keepCompleted
                ? {
                  result: encodeResult(ctx, definition.codec, result, row.id),
                  progress: attempt.progress,
                }
                : null;
              if (
                !await completeLeaseJob(tx, core.names, row.id, token, kept)
              ) {
                throw leaseLostError(row.id, "another worker has it");
              }
              attempt.completedByCaller = true;
            },
          }),
      ),
    );
  } catch (error) {
    const durationMs = performance.now() - start;
    ctx.learn(durationMs);
    if (attempt.stopped) {
      return stoppedRun(attempt, attempt.stopped, durationMs);
    }
    const retry = info.attempt <= definition.maxRetries;
    const retryInMs = retry ? retryDelay(definition, info.attempt) : 0;
    const write = {
      ...empty,
      outcome: retry ? "retry" as const : "fail" as const,
      delayMs: retryInMs,
      error: storedErrorJson(error),
      progress: attempt.progress,
    };
    return retry
      ? {
        result: {
          stat: "retried",
          event: { type: "retry", job: info, durationMs, error, retryInMs },
        },
        write,
      }
      : {
        result: {
          stat: "failed",
          event: { type: "failure", job: info, durationMs, error },
          ended: "failed",
        },
        write,
      };
  } finally {
    ctx.running.delete(row.id);
  }
  const durationMs = performance.now() - start;
  ctx.learn(durationMs);
  if (attempt.stopped) return stoppedRun(attempt, attempt.stopped, durationMs);
  if (returned instanceof Snooze) {
    return {
      result: {
        stat: null,
        event: {
          type: "snooze",
          job: info,
          durationMs,
          delayMs: returned.delayMs,
        },
      },
      write: {
        ...empty,
        outcome: "snooze",
        delayMs: returned.delayMs,
        progress: attempt.progress,
      },
    };
  }
  const success: Outcome = {
    stat: "done",
    event: { type: "success", job: info, durationMs },
    ended: "completed",
  };
  // Completed in the caller's transaction: nothing more to write.
  if (attempt.completedByCaller) return { result: success, write: null };
  return {
    result: success,
    write: {
      ...empty,
      outcome: "complete",
      result: ctx.keepCompleted
        ? encodeResult(ctx, definition.codec, returned, row.id)
        : null,
      progress: attempt.progress,
    },
  };
}

/** The outcome of an attempt the worker gave up on (or never started). */
function stoppedRun(
  attempt: Attempt,
  reason: NonNullable<Attempt["stopped"]>,
  durationMs: number,
): LeaseRun {
  const info = attempt.info;
  switch (reason.code) {
    case "CANCELLED":
      return {
        result: {
          stat: null,
          event: { type: "cancel", job: info, durationMs },
          ended: "cancelled",
        },
        write: {
          outcome: "cancel",
          delayMs: null,
          error: storedErrorJson(reason),
          result: null,
          progress: attempt.progress,
        },
      };
    case "FORCED_STOP":
      // The worker stops: the job goes back, this attempt not counted.
      return {
        result: {
          stat: null,
          event: { type: "abort", job: info, error: reason },
        },
        write: { ...RELEASE, progress: attempt.progress },
      };
    default:
      // LEASE_LOST: another worker may have it; write nothing.
      return {
        result: {
          stat: null,
          event: { type: "abort", job: info, error: reason },
        },
        write: null,
      };
  }
}
