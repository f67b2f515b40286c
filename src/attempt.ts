/**
 * One attempt of a job in a worker: the job object its handler gets, the
 * handler's call, and the ways the worker gives up on it (cancelled, lease
 * lost, forced stop) without waiting for the handler to cooperate.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import { delay } from "./delay.ts";
import { type DurationInput, parseDuration } from "./duration.ts";
import { PQError } from "./errors.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import { type RunningJob, Snooze } from "./task_job.ts";
import type { TaskDefinition } from "./tasks.ts";
import type { WorkEventJob } from "./work_options.ts";

/** Writes a lease job's progress at once (lease mode only). */
export type ProgressWriter = (json: string) => Promise<void>;

/** A lease job's progress writes: at most one per this many ms. */
const PROGRESS_EVERY_MS = 250;

/** A running attempt of a job. */
export class Attempt {
  /** The taken row. */
  readonly row: TakenRow;
  /** The job, as events show it. */
  readonly info: WorkEventJob;
  /** The task that runs it. */
  readonly definition: TaskDefinition;
  /** `job.complete(tx)` marked it completed in the caller's transaction. */
  completedByCaller = false;
  /** The last progress, as JSON text. */
  progress: string | null = null;
  /** Transaction mode: the server process of its batch. */
  pid: number | null = null;
  readonly #signal = new AbortController();
  #stopped: PQError | null = null;
  #giveUp: ((reason: PQError) => void) | null = null;
  #writeProgress: ProgressWriter | null = null;
  #lastWrite = -Infinity;
  #pendingWrite: Promise<void> | null = null;

  /**
   * @param definition The task.
   * @param row The taken row.
   * @param queue The queue's name.
   */
  constructor(definition: TaskDefinition, row: TakenRow, queue: string) {
    this.definition = definition;
    this.row = row;
    this.info = {
      id: row.id,
      queue,
      task: definition.name,
      attempt: row.attempts + 1,
    };
  }

  /** Why the worker gave up on the handler, once it did. */
  get stopped(): PQError | null {
    return this.#stopped;
  }

  /**
   * Gives up on the handler: aborts its `job.signal` with `reason` and
   * stops waiting for it. What it does after that is not recorded.
   */
  stop(reason: PQError): void {
    if (this.#stopped) return;
    this.#stopped = reason;
    this.#signal.abort(reason);
    this.#giveUp?.(reason);
  }

  /** Lease mode: where `job.progress()` writes. */
  set progressWriter(write: ProgressWriter) {
    this.#writeProgress = write;
  }

  /**
   * Calls the handler with the job `extra` completes (`tx` or `complete`).
   * Resolves with what it returned; rejects with what it threw, or with the
   * reason the worker gave up on it.
   */
  async call(
    args: unknown,
    codec: Codec,
    extra: Record<string, unknown>,
  ): Promise<unknown> {
    if (this.#stopped) throw this.#stopped;
    const job: RunningJob = {
      id: this.row.id,
      queue: this.info.queue,
      task: this.info.task,
      attempt: this.info.attempt,
      signal: this.#signal.signal,
      enqueuedAt: this.row.enqueuedAt,
      scheduleAt: this.row.scheduleAt,
      expectedAt: this.row.expectedAt,
      progress: (value) => this.#progress(codec, value),
      snooze: (delay: DurationInput) =>
        new Snooze(parseDuration(delay, "delay")),
      ...extra,
    };
    const gaveUp = new Promise<never>((_, reject) => (this.#giveUp = reject));
    try {
      return await Promise.race([
        gaveUp,
        Promise.resolve().then(() => this.definition.handler(args, job)),
      ]);
    } finally {
      this.#giveUp = null;
    }
  }

  /**
   * Stores progress: in memory (transaction mode, written with the
   * outcome), and in lease mode also in the row, throttled.
   */
  async #progress(codec: Codec, value: unknown): Promise<void> {
    if (this.#stopped) throw this.#stopped;
    this.progress = codec.encode(value);
    const write = this.#writeProgress;
    if (!write) return;
    // Merged into a write still waiting for its turn: it writes the latest.
    if (this.#pendingWrite) return await this.#pendingWrite;
    const wait = this.#lastWrite + PROGRESS_EVERY_MS - performance.now();
    const turn = { pending: null as Promise<void> | null };
    turn.pending = (async () => {
      await delay(wait); // at least a tick: `turn.pending` is set by then
      // From here on, a new call starts the next write.
      if (this.#pendingWrite === turn.pending) this.#pendingWrite = null;
      this.#lastWrite = performance.now();
      await write(this.progress!);
    })();
    this.#pendingWrite = turn.pending;
    return await turn.pending;
  }
}

/** The `CANCELLED` error of a job cancelled while it ran. */
export function cancelledError(id: string): PQError {
  return new PQError(
    "CANCELLED",
    `Job ${id} was cancelled while it ran`,
    { jobId: id },
  );
}

/** The `LEASE_LOST` error of a lease job whose lease ended. */
export function leaseLostError(id: string, why: string): PQError {
  return new PQError(
    "LEASE_LOST",
    `Job ${id} lost its lease (${why}): another worker may run it now, and nothing of this attempt is recorded`,
    { jobId: id },
  );
}
