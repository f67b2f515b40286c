/**
 * The take loop shared by `get()` and the worker: take, promote due jobs,
 * and wait for a wake until a job comes or the time is up.
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import { type LaneKind, MAX_TIMER_MS, type Waiter } from "./listener.ts";
import { promoteDueJobs, takeJobs, type TakenRow } from "./sql/take_jobs.ts";
import type { Executor } from "./types.ts";

/** How a take waits when no job is ready. */
export interface TakeWait {
  /** Milliseconds to wait at most. */
  timeoutMs: number;
  /** Ends the wait early, rejecting with its reason. */
  signal?: AbortSignal;
}

/** What one attempt to take found. */
export interface TakeAttempt {
  /** The jobs taken, best first; empty when none was ready. */
  rows: TakenRow[];
  /** When nothing was taken: look again in this many ms (null: no timer). */
  retryInMs: number | null;
  /** The server process of `db` (to end it if a handler gets stuck). */
  pid: number;
  /** True when due jobs were promoted first: more than one statement ran. */
  promoted: boolean;
}

/** Outside a transaction, promote this many due jobs per statement. */
const PROMOTE_BATCH = 1000;
/** Look again this soon when due jobs are held by another promoter. */
const PROMOTE_BACKOFF_MS = 100;

/**
 * Takes up to `limit` ready jobs of a lane once, first promoting scheduled
 * jobs that came due so that they compete by the queue's order.
 *
 * @param db Where to take (the client, or a transaction).
 * @param inTransaction True when `db` is a transaction: promote only as many
 * jobs as will be taken, since promoted rows stay locked until it ends.
 */
export async function takeReady(
  core: PQCore,
  db: Executor,
  inTransaction: boolean,
  queue: string,
  kind: LaneKind,
  limit: number,
): Promise<TakeAttempt> {
  const task = kind === "task";
  const { statements } = core;
  const first = await takeJobs(db, statements.take(task, limit, false), queue);
  if (first.rows.length || first.dueInMs === null || first.dueInMs > 0) {
    core.vacuum.noteTaken(first.rows.length);
    return {
      rows: first.rows,
      retryInMs: first.dueInMs,
      pid: first.pid,
      promoted: false,
    };
  }
  await promoteDueJobs(
    db,
    statements.promoteDue,
    queue,
    inTransaction ? limit : Math.max(limit, PROMOTE_BATCH),
  );
  const second = await takeJobs(db, statements.take(task, limit, true), queue);
  core.vacuum.noteTaken(second.rows.length);
  // Still nothing: the due jobs are being promoted (or were just taken) by
  // another transaction. Look again shortly rather than spin.
  const retryInMs = second.dueInMs !== null && second.dueInMs <= 0
    ? PROMOTE_BACKOFF_MS
    : second.dueInMs;
  return { rows: second.rows, retryInMs, pid: second.pid, promoted: true };
}

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
  const listener = core.listener;
  let waiter: Waiter | null = null;
  try {
    for (;;) {
      // A notification that lands between this take and the wait below
      // moves the generation on: then look again instead of sleeping.
      const generation = listener.generation;
      if (waiter) waiter.woken = false;
      const found = await takeReady(
        core,
        db,
        inTransaction,
        queue,
        kind,
        limit,
      );
      if (found.rows.length) return found.rows;
      if (!wait) return [];
      wait.signal?.throwIfAborted();
      const remaining = deadline - performance.now();
      if (remaining <= 0) return [];
      waiter ??= listener.enter(queue, kind);
      if (listener.generation !== generation) waiter.woken = true;
      waiter.lane.noteDue(found.retryInMs);
      // A wait longer than a timer can take ends early: then look again.
      const woken = await waiter.wait(remaining, wait.signal);
      if (!woken && remaining <= MAX_TIMER_MS) return [];
    }
  } finally {
    if (waiter) listener.leave(waiter);
  }
}
