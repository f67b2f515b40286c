/**
 * Getters and idle worker slots that wait for jobs, grouped in lanes.
 *
 * A lane is one kind of job of one queue: its plain jobs (for `get()`) or its
 * task jobs (for `work()`). A notification says how many jobs of each lane a
 * statement made ready, and wakes that many waiters of the lane, not all of
 * them. Waiters are woken in arrival order.
 *
 * @module
 */

import { delay } from "./delay.ts";

/** The kind of jobs a waiter takes: plain jobs or task jobs. */
export type LaneKind = "plain" | "task";

/** One getter (or idle worker slot) waiting for a job. */
export class Waiter {
  /** Set by a wake that this waiter has not acted on yet. */
  woken = false;
  #cancelled = false;
  #end: AbortController | null = null;

  /** @param lane The lane the waiter waits in. */
  constructor(readonly lane: Lane) {}

  /** Marks the waiter woken and ends its current wait. */
  wake(): void {
    this.woken = true;
    this.#end?.abort();
  }

  /** Ends this and every later wait as if timed out (the PQ is closing). */
  cancel(): void {
    this.#cancelled = true;
    this.#end?.abort();
  }

  /** True once cancelled. */
  get cancelled(): boolean {
    return this.#cancelled;
  }

  /**
   * Waits until woken (true), until `ms` pass or the waiter is cancelled
   * (false), or until `signal` aborts (rejects with its reason). Returns at
   * once if a wake came in meanwhile.
   */
  async wait(ms: number, signal?: AbortSignal): Promise<boolean> {
    if (this.woken) return true;
    if (this.#cancelled) return false;
    signal?.throwIfAborted();
    const end = new AbortController();
    const onAbort = () => end.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#end = end;
    try {
      await delay(ms, end.signal);
    } finally {
      this.#end = null;
      signal?.removeEventListener("abort", onAbort);
    }
    signal?.throwIfAborted();
    return this.woken;
  }
}

/** The waiters for one kind of job of one queue. */
export class Lane {
  /** Waiters in arrival order: wakes go to the longest waiting first. */
  readonly waiters: Set<Waiter> = new Set();
  #dueAt = Infinity;
  #dueTimer: AbortController | null = null;

  /**
   * @param queue The queue's name.
   * @param kind Plain jobs or task jobs.
   */
  constructor(readonly queue: string, readonly kind: LaneKind) {}

  /** Wakes up to `n` waiters that are not already woken. */
  wake(n: number): void {
    for (const waiter of this.waiters) {
      if (n <= 0) return;
      if (!waiter.woken) {
        waiter.wake();
        n--;
      }
    }
  }

  /** Wakes every waiter. */
  wakeAll(): void {
    this.wake(Infinity);
  }

  /**
   * Remembers when the earliest scheduled job of the queue comes due, and
   * wakes one waiter then (one timer per lane, not one per getter). The
   * waiter that takes it promotes every due job, and the promotion's insert
   * notifies as many waiters as jobs it made ready.
   *
   * @param dueInMs Milliseconds from now; null or not positive: no timer
   * (due jobs held by another promoter announce themselves when promoted).
   */
  noteDue(dueInMs: number | null): void {
    if (dueInMs === null || dueInMs <= 0) return;
    const at = performance.now() + dueInMs;
    if (at >= this.#dueAt) return;
    this.#dueAt = at;
    this.#dueTimer?.abort();
    const timer = new AbortController();
    this.#dueTimer = timer;
    delay(dueInMs + 1, timer.signal).then((elapsed) => {
      if (!elapsed) return;
      this.#dueTimer = null;
      this.#dueAt = Infinity;
      this.wake(1);
    });
  }

  /** Stops the due timer (the lane has no waiters left). */
  stop(): void {
    this.#dueTimer?.abort();
    this.#dueTimer = null;
    this.#dueAt = Infinity;
  }
}
