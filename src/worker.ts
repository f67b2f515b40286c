/**
 * `work()`: the loop that takes batches of a queue's task jobs, with
 * `concurrency` slots, wake-ups and counts. One job's run and outcome is in
 * `run_job.ts`, the stop in `worker_stop.ts`, the savepoints in
 * `savepoints.ts`, the options in `work_options.ts`.
 *
 * Each slot repeats: open a transaction, take a batch of task jobs (deleting
 * their rows), run each job's handler in a savepoint of that transaction,
 * and commit. A job leaves the queue only with the commit, together with what
 * its handler wrote through `job.tx`; if the process or connection dies
 * first, the server rolls the batch back and the jobs are delivered again.
 *
 * Why batches: a transaction per job pays one synchronous commit (a WAL
 * flush) per job; batching the commit, with one savepoint per job so that a
 * failure stays the job's own, is several times faster (bench/RESULTS.md,
 * work). The batch size adapts to the handlers' duration, so a slow handler
 * holds up few others: see `#limit()`.
 *
 * @module
 */

import type { PQCore, RunningWorker } from "./core.ts";
import { assertOpen, PQError } from "./errors.ts";
import { type JobContext, type Outcome, runJob } from "./run_job.ts";
import {
  beginSafely,
  isConnectionError,
  type SafeTransaction,
} from "./safe_transaction.ts";
import { earlySavepoint, lateSavepoint, type Savepoint } from "./savepoints.ts";
import { restoreJobs } from "./sql/manage_jobs.ts";
import { type TakeAttempt, takeReady } from "./take.ts";
import { type TaskRegistry, taskRegistry } from "./tasks.ts";
import type { Waiter } from "./waiters.ts";
import {
  readWorkOptions,
  type WorkEvent,
  type WorkEventJob,
  type WorkOptions,
  type WorkSettings,
  type WorkStats,
} from "./work_options.ts";
import { StopControl } from "./worker_stop.ts";
import { recordOf } from "./job_data.ts";

/** Handlers of a batch should together take about this long at most. */
const BATCH_BUDGET_MS = 20;
/** An idle slot re-checks the queue at least this often. */
const IDLE_RECHECK_MS = 60_000;
/** After an error, a slot waits this long, doubling up to the maximum. */
const ERROR_PAUSE_MS = 250;
const MAX_ERROR_PAUSE_MS = 5_000;

/** Errors after which trying again cannot help: the client was ended. */
function isFatal(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "CONNECTION_ENDED";
}

/** Runs the task jobs of one queue; made by `queue.work()`. */
export class Worker implements RunningWorker {
  readonly #core: PQCore;
  readonly #queue: string;
  readonly #settings: WorkSettings;
  readonly #tasks: TaskRegistry;
  readonly #stop: StopControl;
  readonly #stats: WorkStats = { done: 0, retried: 0, failed: 0 };
  readonly #context: JobContext;
  /** The task names taken, rebuilt when a task is registered. */
  #taskNames: readonly string[] = [];
  /** Smoothed handler time in ms, for the batch size. */
  #handlerMs = BATCH_BUDGET_MS;
  #fatal: unknown = undefined;
  #done: Promise<unknown> = Promise.resolve();

  /**
   * @param core The PQ's shared state.
   * @param queue The queue whose task jobs to run.
   * @param options The options of `work()`.
   * @throws {TypeError} If an option is invalid.
   */
  constructor(core: PQCore, queue: string, options: WorkOptions | undefined) {
    this.#core = core;
    this.#queue = queue;
    this.#settings = readWorkOptions(options);
    this.#tasks = taskRegistry(core, queue);
    this.#stop = new StopControl(core.sql, this.#settings.gracePeriodMs);
    this.#context = {
      core,
      queue,
      tasks: this.#tasks,
      stop: this.#stop,
      emit: (event) => this.#emit(event),
      learn: (ms) => (this.#handlerMs = 0.8 * this.#handlerMs + 0.2 * ms),
    };
  }

  /** The connections the slots may hold at once. */
  get connections(): number {
    return this.#settings.concurrency;
  }

  /** Settles when every slot stopped. */
  get done(): Promise<unknown> {
    return this.#done;
  }

  /** Stops taking jobs; running ones get their grace period. */
  stop(): void {
    this.#stop.stop();
  }

  /**
   * Runs until the signal aborts, the PQ closes, or (in burst mode) no job
   * is ready; resolves once every slot has stopped and every batch ended.
   */
  async run(): Promise<WorkStats> {
    const { signal, concurrency } = this.#settings;
    signal?.throwIfAborted();
    assertOpen(this.#core, "work");
    this.#checkPool();
    const onAbort = () => this.stop();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#core.workers.add(this);
    try {
      const slots = Array.from({ length: concurrency }, () => this.#slot());
      this.#done = Promise.allSettled(slots);
      await this.#done;
    } finally {
      this.#core.workers.delete(this);
      signal?.removeEventListener("abort", onAbort);
      this.#stop.dispose();
    }
    if (this.#fatal !== undefined) throw this.#fatal;
    return { ...this.#stats };
  }

  /**
   * Each slot holds a connection during its batch: more slots than the pool
   * has connections can never all run, and exactly as many leave none for
   * handlers that query the client instead of `job.tx` (they would wait
   * forever for a connection).
   */
  #checkPool(): void {
    const max = this.#core.sql.options.max;
    if (typeof max !== "number") return;
    let others = 0;
    for (const worker of this.#core.workers) others += worker.connections;
    const needed = others + this.#settings.concurrency;
    const also = others > 0
      ? ` (with the ${others} of the other workers of this PQ)`
      : "";
    if (needed > max) {
      throw new RangeError(
        `Cannot work: 'concurrency' ${this.#settings.concurrency} needs ${needed} connections${also}, but the client's pool has max: ${max}: raise max or lower concurrency`,
      );
    }
    if (needed === max) {
      this.#core.report(
        new PQError(
          "POOL_TOO_SMALL",
          `work() with 'concurrency' ${this.#settings.concurrency} holds ${needed} connections${also}, all of the client's max: ${max}: a handler that queries the client instead of job.tx would wait forever for a connection; raise max to at least ${
            needed + 1
          }`,
        ),
      );
    }
  }

  /** One slot: take a batch and run it, or wait for work. */
  async #slot(): Promise<void> {
    const core = this.#core;
    const listener = core.listener;
    let errorPause = ERROR_PAUSE_MS;
    while (!this.#stop.stopping && !core.closed) {
      const generation = listener.generation;
      let found: { took: number; retryInMs: number | null };
      try {
        found = await this.#batch();
        errorPause = ERROR_PAUSE_MS;
      } catch (error) {
        if (this.#stop.stopping || core.closed) return;
        if (isFatal(error)) {
          this.#fatal ??= error;
          this.stop();
          return;
        }
        // The connection dropped or the database is down: report, pause
        // (longer each time, with jitter) and try again.
        this.#emit({ type: "error", error });
        const pause = errorPause * (0.5 + Math.random());
        errorPause = Math.min(errorPause * 2, MAX_ERROR_PAUSE_MS);
        if (!await this.#stop.pause(pause)) return;
        continue;
      }
      if (found.took > 0) continue;
      if (this.#settings.burst) return;
      const waiter: Waiter = listener.enter(this.#queue, "task");
      try {
        if (listener.generation !== generation) waiter.woken = true;
        waiter.lane.noteDue(found.retryInMs);
        await this.#stop.idle(waiter, IDLE_RECHECK_MS);
        // Busy slots leave the lane, so wakes go to idle ones.
        waiter.woken = false;
      } finally {
        listener.leave(waiter);
      }
    }
  }

  /**
   * How many jobs to take: enough that the batch's handlers take about
   * BATCH_BUDGET_MS by their recent average, at least 1, at most batchSize.
   */
  #limit(): number {
    const fit = Math.floor(BATCH_BUDGET_MS / Math.max(this.#handlerMs, 0.05));
    const limit = Math.max(1, Math.min(this.#settings.batchSize, fit));
    // Rounded down to a power of two: each limit is a prepared statement.
    return 2 ** Math.floor(Math.log2(limit));
  }

  /** The names of the tasks registered on the queue, for the take. */
  #names(): readonly string[] {
    if (this.#taskNames.length !== this.#tasks.size) {
      this.#taskNames = [...this.#tasks.keys()];
    }
    return this.#taskNames;
  }

  /** One transaction: take up to #limit() jobs and run them. */
  async #batch(): Promise<{ took: number; retryInMs: number | null }> {
    const outcomes: Outcome[] = [];
    const started: WorkEventJob[] = [];
    let took = 0, retryInMs: number | null = null, pid = 0;
    try {
      await beginSafely(this.#core.sql, async (t) => {
        const { savepoint: first, found } = await this.#take(t);
        took = found.rows.length;
        retryInMs = found.retryInMs;
        pid = found.pid;
        this.#stop.opened(pid);
        for (let i = 0; i < found.rows.length; i++) {
          const savepoint = i === 0 && !found.promoted
            ? first
            : lateSavepoint(t.tx);
          if (this.#stop.stopping) {
            // Stopping: put back what has not started, keep what is done.
            await t.run(savepoint.skip());
            await t.run(restoreJobs(
              t.tx,
              this.#core.names,
              found.rows.slice(i).map((row) => recordOf(this.#queue, row)),
            ));
            break;
          }
          outcomes.push(
            await runJob(this.#context, t, savepoint, found.rows[i], started),
          );
        }
      });
    } catch (thrown) {
      const error = isConnectionError(thrown)
        ? new PQError(
          "CONNECTION_LOST",
          "The connection of the worker's transaction closed mid-batch: its jobs go back to the queue",
          { cause: thrown },
        )
        : thrown;
      for (const job of started) this.#emit({ type: "abort", job, error });
      throw error;
    } finally {
      this.#stop.closed(pid);
    }
    for (const { stat, event } of outcomes) {
      if (stat) this.#stats[stat]++;
      if (event) this.#emit(event);
    }
    return { took, retryInMs };
  }

  /**
   * Takes a batch, with the first job's savepoint sent right behind the
   * take, so a batch of one costs begin, take and commit round trips.
   */
  async #take(
    t: SafeTransaction,
  ): Promise<{ savepoint: Savepoint; found: TakeAttempt }> {
    const taking = t.run(takeReady(
      this.#core,
      t.tx,
      true,
      this.#queue,
      { kind: "task", tasks: this.#names() },
      this.#limit(),
    ));
    const savepoint = earlySavepoint(t.tx);
    let found: TakeAttempt | undefined;
    try {
      found = await taking;
    } finally {
      // Unused when nothing was taken, and when due jobs were promoted
      // first: then it was sent before the second take, and rolling a job
      // back to it would undo that take too.
      if (!found?.rows.length || found.promoted) {
        await t.run(savepoint.skip());
      }
    }
    return { savepoint, found };
  }

  #emit(event: WorkEvent): void {
    try {
      this.#settings.onEvent(event);
    } catch (error) {
      console.error("pq: onEvent threw:", error);
    }
  }
}
