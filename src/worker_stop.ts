/**
 * How a worker stops: first no new jobs; then, after the grace period, the
 * running handlers' `job.signal` aborts and their transactions roll back;
 * a second later, transactions still stuck behind a long statement are
 * ended on the server.
 *
 * Everything that waits on the stop (idle slots, pauses after errors,
 * running handlers) registers here, and the stop reaches each directly: one
 * shared signal with a listener per slot made Node warn about a possible
 * leak at `concurrency: 16` (MaxListenersExceededWarning).
 *
 * @module
 */

import { delay } from "./delay.ts";
import { PQError } from "./errors.ts";
import { openOwnClient } from "./own_client.ts";
import type { Sql } from "./types.ts";
import { arrayLiteral } from "./sql/arrays.ts";
import type { Waiter } from "./waiters.ts";

/** After the grace period, stuck transactions get this long to roll back. */
const TERMINATE_AFTER_MS = 1_000;

/** A running handler, as the stop sees it. */
export interface RunningHandler {
  /** Aborts the handler's `job.signal` and gives up on it. */
  stop(reason: PQError): void;
}

/** The stop of one worker. */
export class StopControl {
  readonly #sql: Sql;
  readonly #gracePeriodMs: number;
  #stopping = false;
  #forced: PQError | null = null;
  /** Ends the grace timer and pauses when the worker has stopped. */
  readonly #timers = new AbortController();
  readonly #waiters = new Set<Waiter>();
  /** Pauses and other waits that a stop ends (`pause()`, `watch()`). */
  readonly #pauses = new Set<AbortController>();
  readonly #handlers = new Set<RunningHandler>();
  /** Server processes of the open batch transactions. */
  readonly #pids = new Set<number>();

  /**
   * @param sql The caller's client: its options open the connection that
   * ends stuck transactions.
   * @param gracePeriodMs How long running handlers may take after a stop.
   */
  constructor(sql: Sql, gracePeriodMs: number) {
    this.#sql = sql;
    this.#gracePeriodMs = gracePeriodMs;
  }

  /** True once the worker was told to stop: take no new jobs. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** The reason handlers were forced to stop, once the grace period ended. */
  get forced(): PQError | null {
    return this.#forced;
  }

  /** Stops taking jobs; forces the running ones after the grace period. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const waiter of this.#waiters) waiter.cancel();
    for (const pause of this.#pauses) pause.abort();
    // Always armed (a handler may be about to start); dispose() ends it.
    delay(this.#gracePeriodMs, this.#timers.signal).then((elapsed) => {
      if (elapsed) this.#force();
    });
  }

  /** Ends the timers, once every slot has stopped. */
  dispose(): void {
    this.#timers.abort();
  }

  /** Waits `ms` unless the worker stops; false if it stopped. */
  async pause(ms: number): Promise<boolean> {
    if (this.#stopping) return false;
    const pause = new AbortController();
    this.#pauses.add(pause);
    try {
      return await delay(ms, pause.signal);
    } finally {
      this.#pauses.delete(pause);
    }
  }

  /**
   * A signal that aborts when the worker stops (at once if it is stopping
   * already), for a wait a stop should end, such as a batch's BEGIN that no
   * answer may ever come to. Call `release()` when the wait is over.
   */
  watch(): { signal: AbortSignal; release(): void } {
    const stopped = new AbortController();
    if (this.#stopping) stopped.abort();
    this.#pauses.add(stopped);
    return {
      signal: stopped.signal,
      release: () => this.#pauses.delete(stopped),
    };
  }

  /** Waits on `waiter` for up to `ms`; a stop cancels the wait. */
  async idle(waiter: Waiter, ms: number): Promise<boolean> {
    if (this.#stopping) return false;
    this.#waiters.add(waiter);
    try {
      return await waiter.wait(ms);
    } finally {
      this.#waiters.delete(waiter);
    }
  }

  /** Ends the wait of every idle slot (they look again at once). */
  wakeIdle(): void {
    for (const waiter of this.#waiters) waiter.wake();
  }

  /** Registers a running handler until `done` settles. */
  async running<T>(handler: RunningHandler, done: Promise<T>): Promise<T> {
    if (this.#forced) handler.stop(this.#forced);
    this.#handlers.add(handler);
    try {
      return await done;
    } finally {
      this.#handlers.delete(handler);
    }
  }

  /** Notes the server process of an open batch transaction. */
  opened(pid: number): void {
    this.#pids.add(pid);
  }

  /** Forgets a batch transaction that ended. */
  closed(pid: number): void {
    this.#pids.delete(pid);
  }

  /** The grace period ended: abort handlers, then end stuck transactions. */
  #force(): void {
    const reason = new PQError(
      "FORCED_STOP",
      `The worker stopped: its grace period of ${this.#gracePeriodMs} ms ended while the handler ran`,
    );
    this.#forced = reason;
    for (const handler of this.#handlers) handler.stop(reason);
    if (this.#pids.size === 0) return;
    delay(TERMINATE_AFTER_MS, this.#timers.signal).then((elapsed) => {
      if (elapsed) return this.#terminate();
    });
  }

  /**
   * Ends the server processes of transactions whose rollback is stuck behind
   * a handler's long statement; the server then rolls them back.
   */
  async #terminate(): Promise<void> {
    const pids = [...this.#pids];
    if (pids.length === 0) return;
    // A connection of its own: the pool may be full of the stuck ones.
    const sql = openOwnClient(this.#sql, { name: "pq worker stop" });
    try {
      await sql.unsafe(
        `select pg_terminate_backend(pid) from unnest($1::text::int4[]) as pid`,
        [arrayLiteral(pids)],
      );
    } catch {
      // The transactions may have ended meanwhile.
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}
