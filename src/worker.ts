/**
 * `work()`: the loop that takes batches of a queue's task jobs, with
 * `concurrency` slots, wake-ups and counts. One job's run and outcome is in
 * `run_job.ts` (transaction mode) and `run_lease_job.ts` (lease mode), the
 * stop in `worker_stop.ts`, the leases in `lease_keeper.ts`, the savepoints
 * in `savepoints.ts`, the options in `work_options.ts`.
 *
 * Transaction mode (the default): each slot opens a transaction, takes a
 * batch of task jobs (deleting their rows), runs each job's handler in a
 * savepoint of that transaction (opened once the handler uses `job.tx`),
 * and commits. A job leaves the queue only
 * with the commit, together with what its handler wrote through `job.tx`;
 * if the process or connection dies first, the server rolls the batch back
 * and the jobs are delivered again. Why batches: a transaction per job pays
 * one synchronous commit (a WAL flush) per job; batching the commit, with
 * one savepoint per job so that a failure stays the job's own, is several
 * times faster (bench/RESULTS.md, work). The batch size adapts to the
 * handlers' duration, so a slow handler holds up few others: see `#limit()`.
 *
 * Lease mode (`{ lease }`): a slot claims a batch of jobs in one committed
 * statement, runs their handlers with no transaction open while the keeper
 * renews their leases, and writes their outcomes in one fenced statement.
 * A worker with tasks of both modes takes a batch of each in turn.
 *
 * @module
 */

import { type Attempt, cancelledError } from "./attempt.ts";
import type { PQCore, RunningWorker } from "./core.ts";
import { connectDeadlineMs } from "./connect_deadline.ts";
import { delay } from "./delay.ts";
import { assertOpen, PQError } from "./errors.ts";
import { recordOf } from "./job_data.ts";
import { LeaseKeeper } from "./lease_keeper.ts";
import { openOwnClient } from "./own_client.ts";
import { backgroundError } from "./report.ts";
import { type JobContext, type Outcome, runJob } from "./run_job.ts";
import { RELEASE, runLeaseJob } from "./run_lease_job.ts";
import {
  beginSafely,
  isConnectionError,
  type SafeTransaction,
} from "./safe_transaction.ts";
import { type JobScope, openJobScope } from "./savepoints.ts";
import { cancelledAmong } from "./sql/job_state.ts";
import { finishLeaseJobs, type LeaseOutcome } from "./sql/lease_jobs.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import { finishBatch, restoreJobs, tellEnded } from "./sql/manage_jobs.ts";
import { type TakeAttempt, type TakeLane, takeReady } from "./take.ts";
import {
  type TaskDefinition,
  type TaskRegistry,
  taskRegistry,
} from "./tasks.ts";
import { RateGate } from "./rate_gate.ts";
import { noteReachable } from "./reconnect_backoff.ts";
import { wakeTaskTakers } from "./sql/pause.ts";
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
import { Scheduler } from "./scheduler.ts";
import { WatchRelay } from "./watch_relay.ts";

/** Handlers of a batch should together take about this long at most. */
const BATCH_BUDGET_MS = 20;
/** An idle slot re-checks the queue at least this often. */
const IDLE_RECHECK_MS = 60_000;
/** After an error, a slot waits this long, doubling up to the maximum. */
const ERROR_PAUSE_MS = 250;
const MAX_ERROR_PAUSE_MS = 5_000;
/** A cancelled transaction-mode job's statement is interrupted after this. */
const INTERRUPT_AFTER_MS = 1_000;

/** Errors after which trying again cannot help: the client was ended. */
function isFatal(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "CONNECTION_ENDED";
}

/** A random positive 63-bit fencing token, as text. */
function newToken(): string {
  const [high, low] = crypto.getRandomValues(new Uint32Array(2));
  return ((BigInt(high & 0x7fffffff) << 32n) | BigInt(low)).toString();
}

/** The task names of each mode, rebuilt when a task is registered. */
interface Lanes {
  size: number;
  /** Tasks without limits, in transaction mode. */
  transaction: string[];
  /** Tasks without limits, in lease mode. */
  lease: string[];
  /** Tasks with limits, each taken on its own (see `limits.ts`). */
  limited: TaskDefinition[];
  /** Lease length in ms by task, as JSON. */
  leaseMs: string;
  /** Most attempts by task, as JSON. */
  maxAttempts: string;
}

/** Why a limited task took nothing though jobs may wait. */
type Held = "rate" | "limit" | null;

/** Runs the task jobs of one queue; made by `queue.work()`. */
export class Worker implements RunningWorker {
  readonly #core: PQCore;
  readonly #queue: string;
  readonly #settings: WorkSettings;
  readonly #tasks: TaskRegistry;
  readonly #stop: StopControl;
  readonly #stats: WorkStats = { done: 0, retried: 0, failed: 0 };
  readonly #context: JobContext;
  readonly #keeper: LeaseKeeper;
  #lanes: Lanes = {
    size: -1,
    transaction: [],
    lease: [],
    limited: [],
    leaseMs: "{}",
    maxAttempts: "{}",
  };
  /** Tells `waitFor()`s of transaction-mode jobs that ended. */
  readonly #watches: WatchRelay;
  /** The rate limits of the limited tasks. */
  readonly #rates: RateGate;
  /**
   * Limited tasks whose jobs all wait behind their limits: the next look is
   * due at `until`, or at the next notification (the listener's generation
   * moved on). One slot looks; the others leave the task alone meanwhile.
   */
  readonly #blocked = new Map<string, { until: number; generation: number }>();
  /** Batches of either mode that have not ended yet. */
  #openBatches = 0;
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
    this.#keeper = new LeaseKeeper(core);
    this.#rates = new RateGate(core, queue);
    this.#watches = new WatchRelay((id, state) =>
      tellEnded(core.listener.client(), core.names, id, state)
    );
    this.#context = {
      core,
      queue,
      tasks: this.#tasks,
      stop: this.#stop,
      keepCompleted: core.pruner.keep.keepCompleted,
      running: new Map(),
      emit: (event) => this.#emit(event),
      learn: (ms) => (this.#handlerMs = 0.8 * this.#handlerMs + 0.2 * ms),
    };
  }

  /** The connections the slots may hold at once. */
  get connections(): number {
    // Lease slots hold a connection only for a statement at a time; only
    // transaction-mode batches keep one for as long as their jobs run.
    const lanes = this.#taskLanes();
    const transaction = lanes.transaction.length > 0 ||
      lanes.limited.some((task) => task.leaseMs === null);
    return transaction ? this.#settings.concurrency : 0;
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
    const scheduler = new Scheduler(this.#core, this.#queue);
    const unsubscribe = this.#core.listener.subscribe((message) => {
      if (message.kind === "cancel") this.#cancel(message.id);
      else if (message.kind === "watch") this.#watches.onWatch(message.id);
      else if (message.kind === "schedule" && message.id === this.#queue) {
        scheduler.poke();
      }
    });
    const pollStop = new AbortController();
    const polling = this.#pollCancels(pollStop.signal);
    // Serverless cron triggers: a burst enqueues the due ticks first.
    const scheduling = this.#settings.burst
      ? scheduler.enqueueDue().catch((error) =>
        this.#core.report(backgroundError("Enqueuing scheduled jobs", error))
      )
      : scheduler.run(pollStop.signal);
    if (this.#settings.burst) await scheduling;
    try {
      const slots = Array.from({ length: concurrency }, () => this.#slot());
      this.#done = Promise.allSettled(slots);
      await this.#done;
    } finally {
      pollStop.abort();
      await polling;
      await scheduling;
      unsubscribe();
      this.#keeper.close();
      await this.#core.counters.flush();
      this.#core.workers.delete(this);
      signal?.removeEventListener("abort", onAbort);
      this.#stop.dispose();
    }
    if (this.#fatal !== undefined) throw this.#fatal;
    return { ...this.#stats };
  }

  /**
   * Each transaction-mode slot holds a connection during its batch: more
   * slots than the pool has connections can never all run, and exactly as
   * many leave none for handlers that query the client instead of `job.tx`
   * (they would wait forever for a connection). Lease-mode slots need none
   * of their own.
   */
  #checkPool(): void {
    const max = this.#core.sql.options.max;
    if (typeof max !== "number") return;
    const mine = this.connections;
    if (mine === 0) return;
    let others = 0;
    for (const worker of this.#core.workers) {
      if (worker !== this) others += worker.connections;
    }
    const needed = others + mine;
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

  /**
   * A running job was cancelled: stop its handler. A transaction-mode
   * handler stuck in a statement on `job.tx` is interrupted after a moment,
   * so that its savepoint can roll back.
   */
  #cancel(id: string): void {
    const reason = cancelledError(id);
    this.#keeper.stop(id, reason);
    const attempt = this.#context.running.get(id);
    if (!attempt) return;
    attempt.stop(reason);
    if (attempt.pid !== null) this.#interrupt(attempt);
  }

  async #interrupt(attempt: Attempt): Promise<void> {
    if (!await delay(INTERRUPT_AFTER_MS)) return;
    if (this.#context.running.get(attempt.row.id) !== attempt) return;
    const sql = openOwnClient(this.#core.sql, { name: "pq worker cancel" });
    try {
      await sql.unsafe(`select pg_cancel_backend($1)`, [attempt.pid!]);
    } catch {
      // The job may have ended meanwhile.
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  /**
   * Without LISTEN (behind a transaction-mode pooler), no NOTIFY says that
   * a running job was cancelled: ask every `pollInterval` while jobs run.
   */
  async #pollCancels(stop: AbortSignal): Promise<void> {
    const listener = this.#core.listener;
    while (await delay(listener.pollIntervalMs, stop)) {
      const ids = [
        ...new Set([...this.#context.running.keys(), ...this.#keeper.ids]),
      ];
      if (listener.listening || ids.length === 0) continue;
      try {
        const client = listener.client();
        const names = this.#core.names;
        for (const id of await cancelledAmong(client, names, ids)) {
          this.#cancel(id);
        }
      } catch (error) {
        this.#core.report(backgroundError("Polling for cancellations", error));
      }
    }
  }

  /** One slot: take batches of each mode and run them, or wait for work. */
  async #slot(): Promise<void> {
    const core = this.#core;
    const listener = core.listener;
    let errorPause = ERROR_PAUSE_MS;
    while (!this.#stop.stopping && !core.closed) {
      const generation = listener.generation;
      const lanes = this.#taskLanes();
      let took = 0;
      let held: Held = null;
      let retryInMs: number | null = null;
      const due = (ms: number | null) => {
        if (ms !== null) retryInMs = Math.min(retryInMs ?? Infinity, ms);
      };
      try {
        if (lanes.lease.length) {
          const token = newToken();
          const found = await this.#counted(() =>
            this.#leaseBatch(
              {
                kind: "lease",
                claim: {
                  tasks: lanes.lease,
                  leaseMs: lanes.leaseMs,
                  maxAttempts: lanes.maxAttempts,
                  token,
                },
              },
              this.#limit(),
              token,
            )
          );
          took += found.took;
          due(found.retryInMs);
        }
        if (lanes.transaction.length && !this.#stop.stopping) {
          const found = await this.#counted(() =>
            this.#batch(
              { kind: "task", tasks: lanes.transaction },
              this.#limit(),
            )
          );
          took += found.took;
          due(found.retryInMs);
        }
        for (const task of lanes.limited) {
          if (this.#stop.stopping) break;
          const found = await this.#limitedBatch(task);
          took += found.took;
          due(found.retryInMs);
          if (found.held === "rate" || (found.held && !held)) held = found.held;
        }
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
      core.pruner.tick();
      if (took > 0) continue;
      // A burst ends when nothing is ready, except jobs held back by a rate
      // limit (their window opens soon) or by limits this worker's own
      // running batches hold (they free them); limits held elsewhere are
      // left to the processes that hold them.
      if (
        this.#settings.burst &&
        !(held === "rate" || (held === "limit" && this.#openBatches > 0))
      ) {
        // Slots held back by a limit wait for this one's news: it ended.
        this.#stop.wakeIdle();
        return;
      }
      const waiter: Waiter = listener.enter(this.#queue, "task");
      try {
        if (listener.generation !== generation) waiter.woken = true;
        waiter.lane.noteDue(retryInMs);
        await this.#stop.idle(waiter, IDLE_RECHECK_MS);
        // Busy slots leave the lane, so wakes go to idle ones.
        waiter.woken = false;
      } finally {
        listener.leave(waiter);
      }
    }
  }

  /** Runs a batch, counted in #openBatches while it runs. */
  async #counted<T>(batch: () => Promise<T>): Promise<T> {
    this.#openBatches++;
    try {
      return await batch();
    } finally {
      this.#openBatches--;
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

  /** The registered tasks of each mode. */
  #taskLanes(): Lanes {
    if (this.#lanes.size === this.#tasks.size) return this.#lanes;
    const lanes: Lanes = {
      size: this.#tasks.size,
      transaction: [],
      lease: [],
      limited: [],
      leaseMs: "",
      maxAttempts: "",
    };
    const leaseMs: Record<string, number> = {};
    const maxAttempts: Record<string, number> = {};
    for (const [name, task] of this.#tasks) {
      if (task.limits) lanes.limited.push(task);
      else if (task.leaseMs === null) lanes.transaction.push(name);
      else {
        lanes.lease.push(name);
        leaseMs[name] = task.leaseMs;
        maxAttempts[name] = task.maxRetries + 1;
      }
    }
    lanes.leaseMs = JSON.stringify(leaseMs);
    lanes.maxAttempts = JSON.stringify(maxAttempts);
    return this.#lanes = lanes;
  }

  /**
   * One transaction: take up to `limit` jobs of `lane` and run them.
   * `admit`, if given, may refuse the batch once its jobs are taken (a rate
   * limit's reservation came too late): they are put back unstarted.
   */
  async #batch(
    lane: TakeLane,
    limit: number,
    admit?: () => boolean,
  ): Promise<{ took: number; retryInMs: number | null; blocked: boolean }> {
    const outcomes: Outcome[] = [];
    const started: WorkEventJob[] = [];
    let took = 0, retryInMs: number | null = null, pid = 0, blocked = false;
    let rows: readonly TakenRow[] = [];
    let committed = false;
    const stop = this.#stop.watch();
    try {
      await beginSafely(this.#core.sql, async (t) => {
        const { scope, found } = await this.#take(t, lane, limit);
        const admitted = found.rows.length === 0 || !admit || admit();
        rows = found.rows;
        this.#watches.taken(rows.map((row) => row.id));
        took = admitted ? found.rows.length : 0;
        retryInMs = found.retryInMs;
        blocked = found.blocked;
        pid = found.pid;
        this.#stop.opened(pid);
        for (let i = 0; i < found.rows.length; i++) {
          if (this.#stop.stopping || !admitted) {
            // Stopping: put back what has not started, keep what is done.
            await t.run(restoreJobs(
              t.tx,
              this.#core.names,
              found.rows.slice(i).map((row) => recordOf(this.#queue, row)),
            ));
            break;
          }
          const row = found.rows[i];
          started.push({
            id: row.id,
            queue: this.#queue,
            task: row.task ?? "",
            attempt: row.attempts + 1,
          });
          outcomes.push(await runJob(this.#context, t, scope, row, pid));
        }
        await this.#finishBatch(t, found, outcomes);
      }, {
        // A BEGIN the driver never settles would hold the slot, and a stop,
        // for good (see `connect_deadline.ts`).
        beginWithinMs: connectDeadlineMs(this.#core.sql),
        signal: stop.signal,
      });
      committed = true;
      noteReachable(this.#core.sql);
    } catch (thrown) {
      const error = isConnectionError(thrown) && !(thrown instanceof PQError)
        ? new PQError(
          "CONNECTION_LOST",
          "The connection of the worker's transaction closed mid-batch: its jobs go back to the queue",
          { cause: thrown },
        )
        : thrown;
      for (const job of started) this.#emit({ type: "abort", job, error });
      throw error;
    } finally {
      stop.release();
      this.#stop.closed(pid);
      const ended = new Map<string, string>();
      if (committed) {
        outcomes.forEach((outcome, i) => {
          if (outcome.ended) ended.set(rows[i].id, outcome.ended);
        });
      }
      this.#watches.settled(rows.map((row) => row.id), ended);
    }
    this.#report(outcomes);
    return { took, retryInMs, blocked };
  }

  /**
   * One batch of a task with limits, in its mode. A rate-limited task
   * first reserves its start (and takes one job); a task whose jobs all
   * wait behind a limit looks again after `pollInterval`, or when a job of
   * its ends anywhere (which wakes its takers in every process).
   */
  async #limitedBatch(
    task: TaskDefinition,
  ): Promise<{ took: number; retryInMs: number | null; held: Held }> {
    const limits = task.limits!;
    const listener = this.#core.listener;
    const poll = listener.pollIntervalMs;
    const blocked = this.#blocked.get(task.name);
    if (blocked) {
      const waitMs = blocked.until - performance.now();
      if (waitMs > 0 && listener.generation === blocked.generation) {
        return { took: 0, retryInMs: waitMs, held: "limit" };
      }
      // This slot looks: the others wait for its answer.
      blocked.until = performance.now() + poll;
      blocked.generation = listener.generation;
    }
    const generation = listener.generation;
    const gate = await this.#rates.enter(task);
    if (gate.waitMs > 0) {
      return { took: 0, retryInMs: gate.waitMs, held: "rate" };
    }
    // A batch runs its jobs one after the other, holding a slot for each:
    // with few slots, take one at a time so the slots run side by side.
    const share = limits.concurrency === null ? Infinity : Math.max(
      1,
      Math.floor(limits.concurrency / this.#settings.concurrency),
    );
    const limit = limits.rateLimit
      ? 1
      : 2 ** Math.floor(Math.log2(Math.min(this.#limit(), share)));
    const token = newToken();
    const lane: TakeLane = {
      kind: "limited",
      take: {
        task: task.name,
        concurrency: limits.concurrency,
        groupConcurrency: limits.groupConcurrency,
        lease: task.leaseMs === null ? null : {
          ms: task.leaseMs,
          token,
          maxAttempts: task.maxRetries + 1,
        },
      },
    };
    let found: { took: number; retryInMs: number | null; blocked: boolean };
    try {
      found = await this.#counted(() =>
        task.leaseMs === null
          ? this.#batch(lane, limit, gate.admit)
          : this.#leaseBatch(lane, limit, token, gate.admit)
      );
    } finally {
      if (!gate.used) gate.giveBack();
    }
    if (found.took > 0 && limits.rateLimit === null) {
      // Slots freed: wake the takers that wait behind them.
      wakeTaskTakers(
        this.#core.listener.client(),
        this.#core.names,
        this.#queue,
        found.took,
      ).catch(() => {
        // They look again after pollInterval.
      });
    }
    if (found.took === 0 && found.blocked) {
      this.#blocked.set(task.name, {
        until: performance.now() + poll,
        generation,
      });
      const retryInMs = Math.min(found.retryInMs ?? Infinity, poll);
      return { took: 0, retryInMs, held: "limit" };
    }
    this.#blocked.delete(task.name);
    return { took: found.took, retryInMs: found.retryInMs, held: null };
  }

  /**
   * Before the commit: consume the cancel requests of the jobs stored as
   * cancelled, and tell the `waitFor()`s of the jobs that ended. Only when
   * there is any, so a plain batch pays nothing.
   */
  async #finishBatch(
    t: SafeTransaction,
    found: TakeAttempt,
    outcomes: Outcome[],
  ): Promise<void> {
    const cancelled: string[] = [];
    const ended: { id: string; state: string }[] = [];
    outcomes.forEach((outcome, i) => {
      const row = found.rows[i];
      if (outcome.cancelled) cancelled.push(row.id);
      if (outcome.ended && (row.watched || this.#watches.watched(row.id))) {
        ended.push({ id: row.id, state: outcome.ended });
        this.#watches.told(row.id);
      }
    });
    if (cancelled.length || ended.length) {
      await t.run(finishBatch(t.tx, this.#core.names, cancelled, ended));
    }
  }

  /**
   * Takes a batch, with the scope its jobs query through sent right behind
   * the take, so a batch of one costs begin, take and commit round trips,
   * and the release of the job's savepoint if its handler used `job.tx`.
   */
  async #take(
    t: SafeTransaction,
    lane: TakeLane,
    limit: number,
  ): Promise<{ scope: JobScope; found: TakeAttempt }> {
    const taking = t.run(takeReady(
      this.#core,
      t.tx,
      true,
      this.#queue,
      lane,
      limit,
    ));
    const scope = t.run(openJobScope(t.tx));
    // Awaited only below: if the take fails, this must not be unhandled.
    scope.catch(() => {});
    const found = await taking;
    return { scope: await scope, found };
  }

  /**
   * Lease mode: claim up to #limit() jobs (committed at once), run them one
   * after the other while their leases are kept, then write their outcomes
   * in one fenced statement.
   */
  async #leaseBatch(
    lane: TakeLane,
    limit: number,
    token: string,
    admit?: () => boolean,
  ): Promise<{ took: number; retryInMs: number | null; blocked: boolean }> {
    const core = this.#core;
    const claimedAt = performance.now();
    const found = await takeReady(
      core,
      core.sql,
      false,
      this.#queue,
      lane,
      limit,
    );
    const rows = found.rows;
    const admitted = rows.length === 0 || !admit || admit();
    for (const row of rows) {
      const leaseMs = this.#tasks.get(row.task ?? "")?.leaseMs ?? 0;
      this.#keeper.hold(row.id, token, leaseMs, claimedAt);
    }
    const writes: LeaseOutcome[] = [];
    const outcomes: Outcome[] = [];
    const ended = new Map<string, Outcome>();
    try {
      for (const row of rows) {
        if (this.#stop.stopping || !admitted) {
          // Stopping: put back what has not started, not counted.
          writes.push({ id: row.id, token, ...RELEASE });
          continue;
        }
        const run = await runLeaseJob(this.#context, this.#keeper, row, token);
        outcomes.push(run.result);
        if (run.write) {
          writes.push({ id: row.id, token, ...run.write });
          ended.set(row.id, run.result);
        }
      }
      const written = await finishLeaseJobs(
        core.sql,
        core.names,
        writes,
        this.#context.keepCompleted,
      );
      // An outcome that could not be written: the lease was lost meanwhile
      // (or the job was cancelled, which is what a cancel outcome says).
      for (const [id, outcome] of ended) {
        if (written.has(id) || !outcome.event) continue;
        if (outcome.event.type === "cancel") continue;
        const job = "job" in outcome.event ? outcome.event.job : null;
        outcome.stat = null;
        outcome.event = job
          ? {
            type: "abort",
            job,
            error: new PQError(
              "LEASE_LOST",
              `Job ${id} lost its lease before its outcome was written: another worker has it`,
              { jobId: id },
            ),
          }
          : null;
      }
    } finally {
      for (const row of rows) this.#keeper.release(row.id);
    }
    this.#report(outcomes);
    return {
      took: admitted ? rows.length : 0,
      retryInMs: found.retryInMs,
      blocked: found.blocked,
    };
  }

  /** Counts and emits the outcomes of a batch that ended. */
  #report(outcomes: Outcome[]): void {
    const telemetry = this.#core.telemetry;
    for (const { stat, event } of outcomes) {
      if (stat) this.#stats[stat]++;
      if (stat && event && "job" in event) {
        this.#core.counters.add(this.#queue, event.job.task, stat);
        telemetry?.outcome(
          this.#queue,
          event.job.task,
          stat,
          "durationMs" in event ? event.durationMs : null,
        );
      }
      if (event) this.#emit(event);
    }
  }

  #emit(event: WorkEvent): void {
    try {
      this.#settings.onEvent(event);
    } catch (error) {
      console.error("pq: onEvent threw:", error);
    }
  }
}
