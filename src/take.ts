/**
 * The take loop shared by `get()` and the worker: take, promote due jobs,
 * and wait for a wake until a job comes or the time is up.
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import type { LaneKind, Waiter } from "./listener.ts";
import {
  promoteDueJobs,
  type TakenRow,
  takeJobs,
} from "./sql/take_jobs.ts";
import type { Executor } from "./types.ts";

/** How a take waits when no job is ready. */
export interface TakeWait {
  /** Milliseconds to wait at most. */
  timeoutMs: number;
  /** Ends the wait early, rejecting with its reason. */
  signal?: AbortSignal;
}

/** Outside a transaction, promote this many due jobs per statement. */
const PROMOTE_BATCH = 1000;
/** Look again this soon when due jobs are held by another promoter. */
const PROMOTE_BACKOFF_MS = 100;

/**
 * Takes up to `limit` jobs of a lane on `db`, waiting up to `wait` for one to
 * become ready (no waiting when `wait` is null). Returns [] on timeout.
 *
 * An abort interrupts only the waiting: a statement that already took jobs
 * returns them, because outside a transaction they are gone from the queue
 * and dropping them would lose them.
 */
export async function takeWaiting(
  core: PQCore,
  db: Executor,
  inTransaction: boolean,
  queue: string,
  kind: LaneKind,
  limit: number,
  wait: TakeWait | null,
): Promise<TakenRow[]> {
  const deadline = performance.now() + (wait?.timeoutMs ?? 0);
  const text = kind === "task"
    ? core.statements.takeTask
    : core.statements.takePlain;
  const listener = core.listener;
  let waiter: Waiter | null = null;
  try {
    for (;;) {
      // A notification that lands between this take and the wait below
      // moves the generation on: then look again instead of sleeping.
      const generation = listener.generation;
      if (waiter) waiter.woken = false;
      let result = await takeJobs(db, text, queue, limit, false);
      if (result.rows.length) return result.rows;
      let retryIn = result.dueInMs;
      if (result.dueInMs !== null && result.dueInMs <= 0) {
        await promoteDueJobs(
          db,
          core.statements.promoteDue,
          queue,
          inTransaction ? limit : Math.max(limit, PROMOTE_BATCH),
        );
        result = await takeJobs(db, text, queue, limit, true);
        if (result.rows.length) return result.rows;
        // Due jobs that another transaction is promoting (or just took):
        // look again shortly rather than spin.
        retryIn = result.dueInMs !== null && result.dueInMs <= 0
          ? PROMOTE_BACKOFF_MS
          : result.dueInMs;
      }
      if (!wait) return [];
      wait.signal?.throwIfAborted();
      const remaining = deadline - performance.now();
      if (remaining <= 0) return [];
      if (!waiter) {
        waiter = listener.enter(queue, kind);
        if (listener.generation !== generation) waiter.woken = true;
      } else if (listener.generation !== generation) {
        waiter.woken = true;
      }
      waiter.lane.noteDue(retryIn);
      if (!await waiter.wait(remaining, wait.signal)) return [];
    }
  } finally {
    if (waiter) listener.leave(waiter);
  }
}
