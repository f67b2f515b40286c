/**
 * Retention (`keep`): finished jobs past their time are removed in batches
 * of at most PRUNE_BATCH rows per statement, so that no statement holds many
 * row locks or writes a burst of WAL, by one pruner at a time per table,
 * chosen by a compare-and-set on `pq_meta` (no leader, no session lock).
 * Running workers try every PRUNE_EVERY_MS; `pq.prune()` runs it at once.
 *
 * @module
 */

import { backgroundError, type Report } from "./report.ts";
import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";
import {
  claimPruneDuty,
  pruneBatch,
  releasePruneDuty,
  type Retention,
} from "./sql/prune_jobs.ts";

/** How often running workers try to prune. */
export const PRUNE_EVERY_MS = 60_000;
/** The most rows one prune statement deletes. */
const PRUNE_BATCH = 1_000;
/** A pruner that died holds the duty this long at most. */
const DUTY_TTL_MS = 10 * 60_000;

/** Prunes a table's finished jobs. */
export class Pruner {
  readonly #sql: Sql;
  readonly #names: TableNames;
  readonly #report: Report;
  readonly #keep: Retention;
  #running: Promise<number> | null = null;
  #last = -Infinity;
  #closed = false;

  /**
   * @param sql The caller's client.
   * @param names The table.
   * @param keep How long finished jobs stay.
   * @param report Where a failed prune is reported.
   */
  constructor(sql: Sql, names: TableNames, keep: Retention, report: Report) {
    this.#sql = sql;
    this.#names = names;
    this.#keep = keep;
    this.#report = report;
  }

  /** Waits for a prune under way; starts no more. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#running?.catch(() => {});
  }

  /** The retention this PQ applies. */
  get keep(): Retention {
    return this.#keep;
  }

  /**
   * Runs a prune if this process may (one at a time here) and wins the
   * table's duty (one at a time across processes). Returns how many jobs it
   * removed; 0 when another pruner runs.
   */
  async prune(force: boolean): Promise<number> {
    if (this.#running) return await this.#running;
    this.#running = this.#run(force).finally(() => (this.#running = null));
    return await this.#running;
  }

  /** Called by running workers: prunes when it is time, in the background. */
  tick(): void {
    if (this.#closed || performance.now() - this.#last < PRUNE_EVERY_MS) {
      return;
    }
    this.#last = performance.now();
    this.prune(false).catch((error) =>
      this.#report(backgroundError("Pruning finished jobs", error))
    );
  }

  async #run(force: boolean): Promise<number> {
    const sql = this.#sql, names = this.#names;
    const { completed, failed, cancelled } = this.#keep;
    if (completed === null && failed === null && cancelled === null && !force) {
      return 0;
    }
    if (!force && !await claimPruneDuty(sql, names, DUTY_TTL_MS)) return 0;
    let removed = 0;
    try {
      for (;;) {
        const batch = await pruneBatch(sql, names, this.#keep, PRUNE_BATCH);
        removed += batch;
        if (batch < PRUNE_BATCH || this.#closed) break;
      }
    } finally {
      if (!force) await releasePruneDuty(sql, names, PRUNE_EVERY_MS);
    }
    return removed;
  }
}
