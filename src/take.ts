/**
 * The take loop shared by `get()` and the worker: take, promote due jobs,
 * and wait for a wake until a job comes or the time is up.
 *
 * @module
 */

import type { Binding } from "./binding.ts";
import type { PQCore } from "./core.ts";
import { arrayLiteral } from "./sql/arrays.ts";
import {
  promoteDueJobs,
  takeJobs,
  type TakenRow,
  type TakeResult,
} from "./sql/take_jobs.ts";
import type { LaneMarks } from "./take_marks.ts";
import { backgroundError } from "./report.ts";
import { takeMayRetry, takeRetryPauseMs } from "./take_retry.ts";
import type { Executor } from "./types.ts";
import type { LaneKind, Waiter } from "./waiters.ts";

/** Which jobs a take is for. */
export type TakeLane =
  /** Plain jobs (`get()`), maybe through a queue bound to a transaction. */
  | { kind: "plain"; binding: Binding | null }
  /** Task jobs (`work()`) of the tasks the worker knows. */
  | { kind: "task"; tasks: readonly string[] }
  /** Lease jobs, claimed with a lease (see `sql/lease_jobs.ts`). */
  | { kind: "lease"; claim: LeaseClaim }
  /** The jobs of one task with limits (see `sql/take_limited.ts`). */
  | { kind: "limited"; take: LimitedTake };

/** The parameters of a limited take. */
export interface LimitedTake {
  task: string;
  concurrency: number | null;
  groupConcurrency: number | null;
  /** Lease mode: the lease in ms and the claim's token; else null. */
  lease: { ms: number; token: string; maxAttempts: number } | null;
}

/** The parameters of a lease claim. */
export interface LeaseClaim {
  /** The lease tasks the worker knows. */
  tasks: readonly string[];
  /** Lease length in ms by task, as JSON. */
  leaseMs: string;
  /** Most attempts by task, as JSON. */
  maxAttempts: string;
  /** The fencing token of this claim. */
  token: string;
}

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
  /** Ready jobs wait behind a task's limits. */
  blocked: boolean;
}

/** Promote this many due jobs per statement. */
const PROMOTE_BATCH = 1000;

/**
 * Takes up to `limit` ready jobs of a lane once, first promoting scheduled
 * jobs that came due so that they compete by the queue's order.
 *
 * @param db Where to take (the client, or a transaction).
 * @param inTransaction True when `db` is a transaction: then due jobs are
 * promoted on the PQ's own connection, committed at once, since rows
 * promoted here would stay locked until the transaction ends, hidden from
 * every other taker (tests/wakeups_test.ts).
 * @throws {PQError} `TRANSACTION_ENDED` when the lane's binding ended.
 */
export async function takeReady(
  core: PQCore,
  db: Executor,
  inTransaction: boolean,
  queue: string,
  lane: TakeLane,
  limit: number,
): Promise<TakeAttempt> {
  const marks = core.marks.of(queue, lane);
  const first = await takeOnce(core, db, queue, lane, limit, false, marks);
  if (first.rows.length || first.dueInMs === null || first.dueInMs > 0) {
    core.vacuum.noteTaken(first.rows.length);
    return {
      rows: first.rows,
      retryInMs: first.rows.length
        ? first.dueInMs
        : soonest(first.dueInMs, marks?.fullCheckInMs(performance.now())),
      pid: first.pid,
      blocked: first.blocked,
    };
  }
  const promoter = inTransaction ? core.listener.client() : db;
  const promoted = await promoteDueJobs(
    promoter,
    core.statements.promoteDue,
    queue,
    Math.max(limit, PROMOTE_BATCH),
  );
  // From the index's start: the promoted jobs keep their ids, which may
  // sort before the lane's marks.
  const second = await takeOnce(
    core,
    db,
    queue,
    lane,
    limit,
    true,
    marks,
    true,
  );
  core.vacuum.noteTaken(second.rows.length);
  if (!core.listener.listening) {
    // No notification will announce the promoted jobs: wake waiters here.
    const task = lane.kind !== "plain";
    const mine = task ? promoted.task : promoted.plain;
    core.listener.wake(queue, waiterKind(lane), mine - second.rows.length);
    core.listener.wake(
      queue,
      task ? "plain" : "task",
      task ? promoted.plain : promoted.task,
    );
  }
  // Still due: another promoter holds those jobs, and its insert will
  // announce them. No timer for them, so nobody polls in a busy loop.
  const retryInMs = second.dueInMs !== null && second.dueInMs > 0
    ? second.dueInMs
    : null;
  return {
    rows: second.rows,
    retryInMs,
    pid: second.pid,
    blocked: second.blocked,
  };
}

/** The waiters a lane's jobs wake: lease jobs are task jobs. */
export function waiterKind(lane: TakeLane): LaneKind {
  return lane.kind === "plain" ? "plain" : "task";
}

/** The sooner of two times to look again (null: none). */
function soonest(a: number | null, b: number | null | undefined) {
  return b == null ? a : a === null ? b : Math.min(a, b);
}

/**
 * Runs the take statement of a lane once, past the lane's low-water marks
 * when `marks` says so (see `take_marks.ts`), or from the index's start
 * (`fromStart`), and tells the marks what it found.
 */
async function takeOnce(
  core: PQCore,
  db: Executor,
  queue: string,
  lane: TakeLane,
  limit: number,
  ignoreDue: boolean,
  marks: LaneMarks | null,
  fromStart = false,
): Promise<TakeResult> {
  const startedAt = performance.now();
  const from = marks && !fromStart ? marks.start(startedAt) : null;
  const result = await takeFrom(core, db, queue, lane, limit, ignoreDue, from);
  marks?.note(startedAt, from === null, result.walkMs, result.rows);
  return result;
}

/**
 * Runs the take statement of a lane once, from the start of its index or
 * (`from`) past the given marks.
 */
async function takeFrom(
  core: PQCore,
  db: Executor,
  queue: string,
  lane: TakeLane,
  limit: number,
  ignoreDue: boolean,
  from: readonly string[] | null = null,
): Promise<TakeResult> {
  const marked = from !== null;
  const after = from ?? [];
  if (lane.kind === "limited") {
    const { take } = lane;
    return await takeJobs(
      db,
      core.statements.takeLimited(limit, ignoreDue),
      queue,
      [
        take.task,
        take.concurrency,
        take.groupConcurrency,
        take.lease?.ms ?? null,
        take.lease?.token ?? null,
        take.lease?.maxAttempts ?? null,
      ],
    );
  }
  if (lane.kind === "lease") {
    const { claim } = lane;
    return await takeJobs(
      db,
      core.statements.claim(limit, ignoreDue, marked),
      queue,
      [
        arrayLiteral(claim.tasks),
        claim.leaseMs,
        claim.token,
        claim.maxAttempts,
        ...after,
      ],
    );
  }
  const task = lane.kind === "task";
  const binding = lane.kind === "plain" ? lane.binding : null;
  const text = core.statements.take({
    task,
    limit,
    ignoreDue,
    bound: binding !== null,
    marked,
  });
  const own = task ? [arrayLiteral(lane.tasks)] : binding ? [binding.mark] : [];
  const result = await takeJobs(db, text, queue, [...own, ...after]);
  binding?.confirm(result.inTransaction, "get job");
  return result;
}

/**
 * Takes up to `limit` jobs of a lane on `db`, waiting up to `wait` for one to
 * become ready (no waiting when `wait` is null). Returns [] on timeout, and
 * when the PQ closes.
 *
 * An abort interrupts only the waiting: a statement that already took jobs
 * returns them, because outside a transaction they are gone from the queue
 * and dropping them would lose them.
 *
 * A take outside a transaction that fails with a connection error is tried
 * again after a pause, while the wait's time and signal allow (see
 * `take_retry.ts`); the pause ends early when a wake comes (the listener
 * reconnected, a job was put). Other errors, and every error in a
 * transaction or without a wait, reject at once.
 */
export async function takeWaiting(
  core: PQCore,
  db: Executor,
  inTransaction: boolean,
  queue: string,
  lane: TakeLane,
  limit: number,
  wait: TakeWait | null,
): Promise<TakenRow[]> {
  const deadline = performance.now() + (wait?.timeoutMs ?? 0);
  const listener = core.listener;
  const kind: LaneKind = waiterKind(lane);
  let waiter: Waiter | null = null;
  /** Takes failed in a row with a connection error. */
  let failures = 0;
  try {
    for (;;) {
      // A notification that lands between this take and the wait below
      // moves the generation on: then look again instead of sleeping.
      const generation = listener.generation;
      if (waiter) waiter.woken = false;
      let found: TakeAttempt | null = null;
      try {
        found = await takeReady(
          core,
          db,
          inTransaction,
          queue,
          lane,
          limit,
        );
        failures = 0;
      } catch (error) {
        if (!wait || !takeMayRetry(error, inTransaction)) throw error;
        if (++failures === 1) {
          core.report(backgroundError("A waiting get()'s take", error));
        }
      }
      if (found?.rows.length) return found.rows;
      if (!wait || core.closed) return [];
      wait.signal?.throwIfAborted();
      const remaining = deadline - performance.now();
      if (remaining <= 0) return [];
      waiter ??= listener.enter(queue, kind);
      if (found === null) {
        const pause = Math.min(takeRetryPauseMs(failures), remaining);
        await waiter.wait(pause, wait.signal);
        if (waiter.cancelled) return [];
        continue;
      }
      if (listener.generation !== generation) waiter.woken = true;
      waiter.lane.noteDue(found.retryInMs);
      if (!await waiter.wait(remaining, wait.signal)) return [];
    }
  } finally {
    if (waiter) listener.leave(waiter);
  }
}
