/**
 * Keeps the leases of a worker's lease jobs: one statement renews all of
 * them, every third of the shortest lease, so the cost does not grow with
 * the number of jobs running. A handler never has to call anything to stay
 * alive.
 *
 * When renewals fail until a job's lease has ended (the database is
 * unreachable, the process was paused), the job's `job.signal` aborts with
 * `LEASE_LOST`: another worker may have it by now. A heartbeat that finds
 * the job cancelled, or taken by another worker, stops it too.
 *
 * Renewals run on the PQ's own connection (see `listener.ts`), not the
 * caller's pool, so a pool full of busy connections cannot starve them.
 *
 * @module
 */

import { type Attempt, cancelledError, leaseLostError } from "./attempt.ts";
import type { PQCore } from "./core.ts";
import { delay } from "./delay.ts";
import type { PQError } from "./errors.ts";
import { backgroundError } from "./report.ts";
import { type HeartbeatStatus, renewLeases } from "./sql/lease_jobs.ts";

/** A claimed lease job. */
interface Hold {
  token: string;
  leaseMs: number;
  /** When its lease was last known renewed (performance.now()). */
  renewedAt: number;
  /** The attempt, once its handler started. */
  attempt: Attempt | null;
  /** Why it must not run (or go on running), if so. */
  stopped: PQError | null;
}

/** The leases of one worker. */
export class LeaseKeeper {
  readonly #core: PQCore;
  readonly #holds = new Map<string, Hold>();
  #timer: AbortController | null = null;

  /** @param core The PQ's shared state. */
  constructor(core: PQCore) {
    this.#core = core;
  }

  /** Starts keeping a claimed job's lease, from the claim's time. */
  hold(id: string, token: string, leaseMs: number, claimedAt: number): void {
    this.#holds.set(id, {
      token,
      leaseMs,
      renewedAt: claimedAt,
      attempt: null,
      stopped: null,
    });
    this.#schedule();
  }

  /**
   * The attempt of a held job, once its handler starts. Returns why it must
   * not start (cancelled or lost before), or null.
   */
  attach(id: string, attempt: Attempt): PQError | null {
    const hold = this.#holds.get(id);
    if (!hold) return null;
    hold.attempt = attempt;
    return hold.stopped;
  }

  /** Why a held job stopped, if it did. */
  stoppedOf(id: string): PQError | null {
    return this.#holds.get(id)?.stopped ?? null;
  }

  /** Stops a held job (cancelled while it ran, or before it started). */
  stop(id: string, reason: PQError): void {
    const hold = this.#holds.get(id);
    if (!hold || hold.stopped) return;
    hold.stopped = reason;
    hold.attempt?.stop(reason);
  }

  /** Forgets a job whose outcome was written (or given up on). */
  release(id: string): void {
    this.#holds.delete(id);
    if (this.#holds.size === 0) {
      this.#timer?.abort();
      this.#timer = null;
    }
  }

  /** The ids of the jobs held now. */
  get ids(): string[] {
    return [...this.#holds.keys()];
  }

  /** Stops renewing (the worker has stopped). */
  close(): void {
    this.#timer?.abort();
    this.#timer = null;
  }

  /**
   * Renews every third of the shortest lease held, and checks every time
   * that no lease ran out meanwhile: a renewal that hangs (the server is
   * unreachable) must not keep a handler running past its lease.
   */
  #schedule(): void {
    if (this.#timer || this.#holds.size === 0) return;
    const timer = new AbortController();
    this.#timer = timer;
    let renewing: Promise<void> | null = null;
    (async () => {
      while (!timer.signal.aborted && this.#holds.size > 0) {
        let shortest = Infinity;
        for (const hold of this.#holds.values()) {
          shortest = Math.min(shortest, hold.leaseMs);
        }
        if (!await delay(shortest / 3, timer.signal)) return;
        renewing ??= this.#renew().finally(() => (renewing = null));
        this.#checkDeadlines();
      }
    })();
  }

  async #renew(): Promise<void> {
    const holds = [...this.#holds].filter(([, hold]) => !hold.stopped);
    if (holds.length === 0) return;
    const sent = performance.now();
    let statuses: Map<string, HeartbeatStatus>;
    try {
      statuses = await renewLeases(
        this.#core.listener.client(),
        this.#core.names,
        holds.map(([id, hold]) => ({
          id,
          token: hold.token,
          leaseMs: hold.leaseMs,
        })),
      );
    } catch (error) {
      this.#core.report(backgroundError("Renewing leases", error));
      return;
    }
    for (const [id, hold] of holds) {
      const status = statuses.get(id);
      if (status === "renewed") hold.renewedAt = sent;
      else if (status === "cancelled") this.stop(id, cancelledError(id));
      else if (status === "lost") {
        this.stop(id, leaseLostError(id, "another worker has it"));
      }
      // "locked": a transaction holds the row (job.complete(tx) not yet
      // committed); the lease was not renewed, and the deadline decides.
    }
  }

  /** Stops the jobs whose lease ran out without a renewal. */
  #checkDeadlines(): void {
    const now = performance.now();
    for (const [id, hold] of this.#holds) {
      if (!hold.stopped && now - hold.renewedAt >= hold.leaseMs) {
        this.stop(id, leaseLostError(id, "it could not be renewed in time"));
      }
    }
  }
}
