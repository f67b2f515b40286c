/**
 * Gives a queue table's empty pages back after a pinned horizon, where pq
 * vacuums the table itself (see `vacuum.ts`).
 *
 * While an old snapshot pins the horizon, no deleted row may be removed,
 * and every put goes to a new page at the table's end. Once the pin ends,
 * VACUUM frees those pages, but gives them back only from the table's end,
 * and only when it gets an exclusive lock without waiting in line: a busy
 * worker seldom leaves it one, and the last pages hold the jobs just put,
 * so the table kept several times its clean size (bench/RESULTS.md,
 * pressure).
 *
 * So when a vacuum left the table over the bar of `bloatBar` (1 MiB, and
 * ten times what its rows need at 1 KiB a row), with at most 10,000 rows
 * and at most 32 MiB to read, pq rewrites it with `VACUUM (FULL)`, which
 * rebuilds its indexes too. The rewrite holds an exclusive lock: puts and
 * takes wait for it, and for its own wait for the lock, which
 * `lock_timeout` cuts at 100 ms. After a try that misses the lock, the next
 * waits 20 s, then twice as long after each further miss (a session that
 * keeps a transaction open on the table would otherwise hold the queue up
 * every turn). Rows a pin keeps count as rows (see `vacuum_counts.ts`): no
 * rewrite starts during a pin. Nor while a failed concurrent rebuild left
 * an invalid index copy: the rewrite would rebuild it as a valid one, a
 * second index for good; the index turn drops it first (`reindex.ts`).
 *
 * @module
 */

import { withLockTimeout } from "./lock_timeout.ts";
import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";
import { bloatBar, type VacuumCounts } from "./vacuum_counts.ts";

/** Generous bytes per row (a job with small data takes some 100). */
const ROW_BYTES = 1024;
/** Never rewrite more rows than this: everything waits meanwhile. */
const MAX_ROWS = 10_000;
/** Nor read more than this: everything waits meanwhile. */
const MAX_BYTES = 32 << 20;
/** How long the rewrite may wait for its lock, while everything waits. */
const LOCK_TIMEOUT = "100ms";
/** The pause after a try that missed the lock, doubled after each miss. */
const FIRST_BACKOFF_MS = 20_000;
/** The longest pause after tries that missed the lock. */
const MAX_BACKOFF_MS = 60 * 60_000;

/** True when a vacuum left the table worth a rewrite. */
export function worthCompacting(counts: VacuumCounts): boolean {
  return !counts.leftovers &&
    counts.rows + counts.pinned <= MAX_ROWS &&
    counts.bytes <= MAX_BYTES &&
    counts.bytes > bloatBar(counts, ROW_BYTES);
}

/** Rewrites a bloated table, backing off while its lock is not to be had. */
export class Compactor {
  #notBefore = -Infinity;
  #backoffMs = 0;

  /**
   * Rewrites the table if `counts` (what the last vacuum left) say it is
   * worth it and no earlier try that missed the lock asks to wait. Run
   * outside any transaction, after a VACUUM of the table.
   *
   * @returns True when the table (and its indexes) was rewritten.
   */
  async compact(
    sql: Sql,
    names: TableNames,
    counts: VacuumCounts,
  ): Promise<boolean> {
    const now = performance.now();
    if (!worthCompacting(counts) || now < this.#notBefore) return false;
    if (await compactTable(sql, names)) {
      this.#backoffMs = 0;
      return true;
    }
    this.#backoffMs = Math.min(
      MAX_BACKOFF_MS,
      Math.max(FIRST_BACKOFF_MS, 2 * this.#backoffMs),
    );
    this.#notBefore = now + this.#backoffMs;
    return false;
  }
}

/**
 * `VACUUM (FULL)` of the table, waiting at most 100 ms for its lock.
 * Resolves false when the lock was not to be had.
 */
export async function compactTable(
  sql: Sql,
  names: TableNames,
): Promise<boolean> {
  const done = await withLockTimeout(sql, LOCK_TIMEOUT, async (db) => {
    await db.unsafe(`vacuum (full) ${names.qualified}`);
    return true;
  });
  return done === true;
}
