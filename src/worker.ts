/**
 * `work()`: runs a queue's task jobs with concurrency, retries, failed jobs
 * and a graceful stop.
 *
 * Each of `concurrency` slots repeats: open a transaction, take a batch of
 * task jobs (deleting their rows), run each job's handler in a savepoint of
 * that transaction, and commit. A job leaves the queue only with the commit,
 * together with what its handler wrote through `job.tx`; if the process or
 * connection dies first, the server rolls the batch back and the jobs are
 * delivered again. A handler that throws rolls back only its savepoint; the
 * job is then put back for a retry or stored as failed, in the same
 * transaction.
 *
 * Why batches: a transaction per job pays one synchronous commit (a WAL
 * flush) per job. Batching the commit, with one savepoint per job so that a
 * failure stays the job's own, measured 17,500 jobs/s against 3,840 for a
 * transaction per job (20,000 no-op jobs, 8 slots, 2 cores, PostgreSQL 15 on
 * the same host; bench/RESULTS.md). The batch size adapts to the handlers'
 * duration, so a slow handler holds up few others: see `#limit()`. The first
 * job's savepoint is sent together with the take (`earlySavepoint`), which
 * took the latency from a put to its handler's start from 1.44x raw SQL's to
 * 1.22x.
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import { describe } from "./describe.ts";
import { parseDuration } from "./duration.ts";
import { guardTransaction } from "./job_transaction.ts";
import { MAX_TIMER_MS, type Waiter } from "./listener.ts";
import { checkBoolean, checkOptions, checkSignal } from "./options.ts";
import { withAction } from "./new_jobs.ts";
import { type JobRecord, restoreJobs, returnJob } from "./sql/manage_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import { beginSafely, type SafeTransaction } from "./safe_transaction.ts";
import { takeReady } from "./take.ts";
import {
  retryDelay,
  type TaskDefinition,
  type TaskJob,
  taskRegistry,
} from "./tasks.ts";
import type { TransactionSql } from "./types.ts";
import type {
  WorkEvent,
  WorkEventJob,
  WorkOptions,
  WorkStats,
} from "./work_options.ts";
import postgres from "postgres";

const WORK_OPTIONS = [
  "concurrency",
  "signal",
  "burst",
  "gracePeriod",
  "batchSize",
  "onEvent",
] as const;

/** Handlers of a batch should together take about this long at most. */
const BATCH_BUDGET_MS = 20;
/** An idle slot re-checks the queue at least this often. */
const IDLE_RECHECK_MS = 60_000;
/** After an error, a slot waits this long, doubling up to the maximum. */
const ERROR_PAUSE_MS = 250;
const MAX_ERROR_PAUSE_MS = 5_000;
/** After the grace period, stuck transactions get this long to roll back. */
const TERMINATE_AFTER_MS = 1_000;

/** The default `onEvent`: failures and worker errors go to the console. */
function logFailures(event: WorkEvent): void {
  if (event.type === "failure") {
    console.error(
      `pq: job ${event.job.id} of task ${
        JSON.stringify(event.job.task)
      } failed after ${event.job.attempt} attempt(s):`,
      event.error,
    );
  } else if (event.type === "error") {
    console.error("pq: the worker will try again after an error:", event.error);
  }
}

/**
 * Errors after which trying again cannot help: the client was ended.
 */
function isFatal(error: unknown): boolean {
  return (error as { code?: unknown })?.code === "CONNECTION_ENDED";
}

/** Error raised in handlers' place when the grace period ends. */
class ForcedStop extends Error {
  constructor() {
    super("The worker stopped: its grace period ended");
    this.name = "ForcedStop";
  }
}

/** Stores an error as JSON text that PostgreSQL accepts. */
function errorJson(error: unknown): string {
  const fields = error instanceof Error
    ? { name: error.name, message: error.message, stack: error.stack }
    : { message: String(error) };
  return JSON.stringify(
    fields,
    (_key, value) => typeof value === "string" ? value.toWellFormed() : value,
  );
}

/** An event waiting for its batch to commit. */
type Pending = { stat: keyof WorkStats | null; event: WorkEvent };

/** Runs the task jobs of one queue; made by `queue.work()`. */
export class Worker {
  readonly #core: PQCore;
  readonly #queue: string;
  readonly #concurrency: number;
  readonly #burst: boolean;
  readonly #gracePeriodMs: number;
  readonly #batchSize: number;
  readonly #onEvent: (event: WorkEvent) => void;
  readonly #signal: AbortSignal | undefined;
  readonly #stop = new AbortController();
  readonly #force = new AbortController();
  /** Aborts the `job.signal` of each running handler. */
  readonly #running = new Set<AbortController>();
  /** Server processes of the open batch transactions. */
  readonly #open = new Set<number>();
  readonly #stats: WorkStats = { done: 0, retried: 0, failed: 0 };
  /** Smoothed handler time in ms, for the batch size. */
  #handlerMs = BATCH_BUDGET_MS;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
  #terminateTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(core: PQCore, queue: string, options: WorkOptions | undefined) {
    this.#core = core;
    this.#queue = queue;
    try {
      const o = checkOptions(options, WORK_OPTIONS);
      this.#concurrency = positiveInteger(o.concurrency ?? 1, "concurrency");
      this.#batchSize = positiveInteger(o.batchSize ?? 32, "batchSize");
      this.#burst = checkBoolean(o.burst, "burst") ?? false;
      this.#signal = checkSignal(o.signal);
      this.#gracePeriodMs = parseDuration(
        o.gracePeriod ?? "10s",
        "gracePeriod",
      );
      if (o.onEvent !== undefined && typeof o.onEvent !== "function") {
        throw new TypeError(
          `'onEvent' must be a function: received ${describe(o.onEvent)}`,
        );
      }
      this.#onEvent = o.onEvent ?? logFailures;
    } catch (error) {
      withAction("work", error);
    }
  }

  /** Runs until the signal aborts (or, in burst mode, no job is ready). */
  async run(): Promise<WorkStats> {
    const signal = this.#signal;
    signal?.throwIfAborted();
    if (this.#core.closed) throw new Error("Cannot work: this PQ is closed");
    const onAbort = () => this.#stopping();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      await Promise.all(
        Array.from({ length: this.#concurrency }, () => this.#slot()),
      );
    } finally {
      signal?.removeEventListener("abort", onAbort);
      clearTimeout(this.#graceTimer);
      clearTimeout(this.#terminateTimer);
    }
    return { ...this.#stats };
  }

  /** Stop taking jobs; force the running ones after the grace period. */
  #stopping(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    // Always armed (a handler may be about to start); run() clears it.
    this.#armGrace(this.#gracePeriodMs);
  }

  /** Forces the stop in `ms`, in steps a timer can take (see MAX_TIMER_MS). */
  #armGrace(ms: number): void {
    const step = Math.min(ms, MAX_TIMER_MS);
    this.#graceTimer = setTimeout(
      () => step < ms ? this.#armGrace(ms - step) : this.#forceStop(),
      step,
    );
  }

  /** The grace period ended: abort handlers, then end stuck transactions. */
  #forceStop(): void {
    const reason = new ForcedStop();
    for (const job of this.#running) job.abort(reason);
    this.#force.abort(reason);
    if (this.#open.size === 0) return;
    this.#terminateTimer = setTimeout(
      () => this.#terminate(),
      TERMINATE_AFTER_MS,
    );
  }

  /**
   * Ends the server processes of transactions whose rollback is stuck behind
   * a handler's long statement; the server then rolls them back.
   */
  async #terminate(): Promise<void> {
    const pids = [...this.#open];
    if (pids.length === 0) return;
    // A connection of its own: the pool may be full of the stuck ones.
    const sql = postgres({
      ...this.#core.sql.options,
      max: 1,
      onnotice: () => {},
    } as unknown as postgres.Options<Record<string, never>>);
    try {
      await sql.unsafe(
        `select pg_terminate_backend(pid)
        from unnest($1::int4[]) as pid`,
        [pids],
      );
    } catch {
      // The transactions may have ended meanwhile.
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  /** One slot: take a batch and run it, or wait for work. */
  async #slot(): Promise<void> {
    const listener = this.#core.listener;
    let waiter: Waiter | null = null;
    let errorPause = ERROR_PAUSE_MS;
    try {
      while (!this.#stop.signal.aborted && !this.#core.closed) {
        const generation = listener.generation;
        let took: number, retryInMs: number | null;
        try {
          ({ took, retryInMs } = await this.#batch());
          errorPause = ERROR_PAUSE_MS;
        } catch (error) {
          if (this.#stop.signal.aborted) return;
          if (isFatal(error)) throw error;
          // The connection dropped or the database is down: report, pause
          // (longer each time, with jitter) and try again.
          this.#emit({ type: "error", error });
          const pause = errorPause * (0.5 + Math.random());
          errorPause = Math.min(errorPause * 2, MAX_ERROR_PAUSE_MS);
          if (!await this.#pause(pause)) return;
          continue;
        }
        if (took > 0) continue;
        if (this.#burst) return;
        waiter = listener.enter(this.#queue, "task");
        if (listener.generation !== generation) waiter.woken = true;
        waiter.lane.noteDue(retryInMs);
        try {
          await waiter.wait(IDLE_RECHECK_MS, this.#stop.signal);
        } catch {
          return; // stopped
        }
        // Busy slots leave the lane, so wakes go to idle ones.
        waiter.woken = false;
        listener.leave(waiter);
        waiter = null;
      }
    } finally {
      if (waiter) listener.leave(waiter);
    }
  }

  /** Waits `ms` unless the worker stops; false if it stopped. */
  #pause(ms: number): Promise<boolean> {
    const stop = this.#stop.signal;
    return new Promise((resolve) => {
      const done = (go: boolean) => {
        clearTimeout(timer);
        stop.removeEventListener("abort", onStop);
        resolve(go);
      };
      const onStop = () => done(false);
      const timer = setTimeout(() => done(true), ms);
      stop.addEventListener("abort", onStop, { once: true });
    });
  }

  /**
   * How many jobs to take: enough that the batch's handlers take about
   * BATCH_BUDGET_MS by their recent average, at least 1, at most batchSize.
   */
  #limit(): number {
    const fit = Math.floor(BATCH_BUDGET_MS / Math.max(this.#handlerMs, 0.05));
    const limit = Math.max(1, Math.min(this.#batchSize, fit));
    // Rounded down to a power of two: each limit is a prepared statement.
    return 2 ** Math.floor(Math.log2(limit));
  }

  /** One transaction: take up to #limit() jobs and run them. */
  async #batch(): Promise<{ took: number; retryInMs: number | null }> {
    const core = this.#core;
    const pending: Pending[] = [];
    const started: WorkEventJob[] = [];
    let took = 0, retryInMs: number | null = null, pid = 0;
    try {
      await beginSafely(core.sql, async (t) => {
        const taking = t.run(takeReady(
          core,
          t.tx,
          true,
          this.#queue,
          "task",
          this.#limit(),
        ));
        // The first job's savepoint goes out right behind the take, so a
        // batch of one costs begin, take and commit round trips, not four.
        const first = earlySavepoint(t.tx);
        let found;
        try {
          found = await taking;
        } finally {
          // Unused when nothing was taken, and when due jobs were promoted
          // first: then it was sent before the promotion, and rolling a job
          // back to it would undo the promotion and the take too.
          if (!found?.rows.length || found.promoted) {
            await t.run(first.skip());
          }
        }
        took = found.rows.length;
        retryInMs = found.retryInMs;
        pid = found.pid;
        this.#open.add(pid);
        for (let i = 0; i < found.rows.length; i++) {
          const savepoint = i === 0 && !found.promoted
            ? first
            : lateSavepoint(t.tx);
          if (this.#stop.signal.aborted) {
            // Stopping: put back what has not started, keep what is done.
            await t.run(savepoint.skip());
            await t.run(restoreJobs(
              t.tx,
              core.names,
              found.rows.slice(i).map((row) => this.#record(row)),
            ));
            break;
          }
          await this.#runJob(t, savepoint, found.rows[i], pending, started);
        }
      });
    } catch (error) {
      for (const job of started) this.#emit({ type: "abort", job, error });
      throw error;
    } finally {
      this.#open.delete(pid);
    }
    for (const { stat, event } of pending) {
      if (stat) this.#stats[stat]++;
      this.#emit(event);
    }
    return { took, retryInMs };
  }

  /** Runs one job of a batch in a savepoint; records how it ended. */
  async #runJob(
    t: SafeTransaction,
    savepoint: Savepoint,
    row: TakenRow,
    pending: Pending[],
    started: WorkEventJob[],
  ): Promise<void> {
    const core = this.#core;
    const task = row.task ?? "";
    const attempt = row.attempts + 1;
    const info: WorkEventJob = {
      id: row.id,
      queue: this.#queue,
      task,
      attempt,
    };
    const record = { ...this.#record(row), attempts: attempt };
    const definition = taskRegistry(core, this.#queue).get(task);
    let args: unknown;
    try {
      if (!definition) {
        throw new Error(
          `No task named ${JSON.stringify(task)} is registered on the queue ${
            JSON.stringify(this.#queue)
          } in this worker`,
        );
      }
      args = definition.codec.decode(row.data);
    } catch (error) {
      await t.run(savepoint.skip());
      await t.run(returnJob(t.tx, core.names, record, null, errorJson(error)));
      pending.push({
        stat: "failed",
        event: { type: "failure", job: info, durationMs: 0, error },
      });
      return;
    }
    started.push(info);
    this.#emit({ type: "start", job: info });
    const start = performance.now();
    try {
      await t.run(
        savepoint.use((sp) =>
          t.run(this.#runHandler(definition, args, sp, () => t.dead, row, info))
        ),
      );
      const durationMs = performance.now() - start;
      this.#learn(durationMs);
      pending.push({
        stat: "done",
        event: { type: "success", job: info, durationMs },
      });
    } catch (error) {
      if (this.#force.signal.aborted) throw error; // roll the batch back
      const durationMs = performance.now() - start;
      this.#learn(durationMs);
      if (attempt <= definition.maxRetries) {
        const retryInMs = retryDelay(definition, attempt);
        await t.run(
          returnJob(t.tx, core.names, record, retryInMs, errorJson(error)),
        );
        pending.push({
          stat: "retried",
          event: { type: "retry", job: info, durationMs, error, retryInMs },
        });
      } else {
        await t.run(
          returnJob(t.tx, core.names, record, null, errorJson(error)),
        );
        pending.push({
          stat: "failed",
          event: { type: "failure", job: info, durationMs, error },
        });
      }
    }
  }

  /** Calls the handler, unless and until the grace period ends. */
  async #runHandler(
    definition: TaskDefinition,
    args: unknown,
    sp: TransactionSql,
    isDead: () => boolean,
    row: TakenRow,
    info: WorkEventJob,
  ): Promise<void> {
    const running = new AbortController();
    const guard = guardTransaction(sp, `job ${row.id}`, isDead);
    const job: TaskJob = {
      id: row.id,
      queue: this.#queue,
      task: info.task,
      attempt: info.attempt,
      signal: running.signal,
      tx: guard.tx,
      enqueuedAt: row.enqueuedAt,
      scheduleAt: row.scheduleAt,
      expectedAt: row.expectedAt,
    };
    const force = this.#force.signal;
    force.throwIfAborted();
    this.#running.add(running);
    try {
      await new Promise<void>((resolve, reject) => {
        const onForce = () => reject(force.reason);
        force.addEventListener("abort", onForce, { once: true });
        Promise.resolve()
          .then(() => definition.handler(args, job))
          .then(() => resolve(), reject)
          .finally(() => force.removeEventListener("abort", onForce));
      });
    } finally {
      guard.close();
      this.#running.delete(running);
    }
  }

  /** The job as stored, to write it back. */
  #record(row: TakenRow): JobRecord {
    return {
      id: row.id,
      queue: this.#queue,
      task: row.task,
      data: row.data,
      attempts: row.attempts,
      enqueuedAt: row.enqueuedAt,
      scheduleAt: row.scheduleAt,
      expectedAt: row.expectedAt,
    };
  }

  /** Updates the smoothed handler time. */
  #learn(durationMs: number): void {
    this.#handlerMs = 0.8 * this.#handlerMs + 0.2 * durationMs;
  }

  #emit(event: WorkEvent): void {
    try {
      this.#onEvent(event);
    } catch (error) {
      console.error("pq: onEvent threw:", error);
    }
  }
}

/** A savepoint a job runs in: `use(fn)` runs fn in it; `skip()` does not. */
interface Savepoint {
  use(fn: (sp: TransactionSql) => Promise<void>): Promise<unknown>;
  skip(): Promise<unknown>;
}

/**
 * A savepoint sent before it is known to be needed: postgres.js sends it as
 * soon as this is called (pipelined behind the statement sent before), and
 * runs the function given to `use()` in it once it exists. `skip()` leaves
 * it empty, which costs nothing more.
 */
function earlySavepoint(tx: TransactionSql): Savepoint {
  type Work = ((sp: TransactionSql) => Promise<void>) | null;
  let choose!: (work: Work) => void;
  const chosen = new Promise<Work>((resolve) => (choose = resolve));
  const scope = tx.savepoint(async (sp) => {
    const work = await chosen;
    if (work) await work(sp);
  });
  // Awaited through use() or skip(); this only keeps an error from being
  // reported as unhandled when the batch failed before either.
  scope.catch(() => {});
  return {
    use(work) {
      choose(work);
      return scope;
    },
    skip() {
      choose(null);
      return scope;
    },
  };
}

/** A savepoint opened when the job starts. */
function lateSavepoint(tx: TransactionSql): Savepoint {
  return {
    use: (work) => tx.savepoint(work),
    skip: () => Promise.resolve(),
  };
}

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(
      `'${name}' must be a whole number of at least 1: received ${
        describe(value)
      }`,
    );
  }
  return value;
}
