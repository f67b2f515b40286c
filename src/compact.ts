/**
 * Gives a queue table's empty pages back after a pinned horizon, where pq
 * vacuums the table itself (see `vacuum.ts`).
 *
 * While an old snapshot pins the horizon, no deleted row may be removed,
 * and every put goes to a new page at the table's end (a 90 s pin at 500
 * jobs/s: 0.3 to 4.0 MB). Once the pin ends, VACUUM frees those pages, but
 * gives them back only from the table's end, and only when it gets an
 * exclusive lock without waiting in line, within 5 s: a busy worker seldom
 * leaves it one, and the last pages hold the jobs just put
 * (bench/RESULTS.md, pressure: 4.0 to 1.2 MB at best, nothing in another
 * run).
 *
 * So when a vacuum left the table over 1 MiB and ten times what its live
 * rows need (1 KiB a row, generous), with at most 10,000 live rows, which a
 * rewrite copies in milliseconds, pq rewrites it with `VACUUM (FULL)`, which
 * rebuilds its indexes too. The rewrite holds an exclusive lock: puts and
 * takes wait for it, and for its own wait for the lock, which
 * `lock_timeout` bounds to 100 ms. A rewrite that does not get the lock in
 * time gives up, and the next try waits twice as long as the last (a
 * session that keeps a transaction open on the table would otherwise stop
 * the queue for 100 ms every turn). Rows a pin keeps count as live (see
 * `vacuum_counts.ts`): no rewrite starts during a pin.
 *
 * @module
 */

import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";
import type { VacuumCounts } from "./vacuum_counts.ts";

/** A table smaller than this is never worth a rewrite. */
const MIN_BYTES = 1 << 20;
/** Rewrite a table this many times larger than its live rows need. */
const BLOAT_FACTOR = 10;
/** Generous bytes per row (a job with small data takes some 100). */
const ROW_BYTES = 1024;
/** Never rewrite more rows than this: everything waits meanwhile. */
const MAX_ROWS = 10_000;
/** How long the rewrite may wait for its lock, while everything waits. */
const LOCK_TIMEOUT_MS = 100;
/** The pause after a rewrite that did not get the lock, doubled each time. */
const FIRST_BACKOFF_MS = 10_000;
/** The longest pause after rewrites that did not get the lock. */
const MAX_BACKOFF_MS = 60 * 60_000;

/** SQLSTATE of a wait that `lock_timeout` ended. */
const LOCK_NOT_AVAILABLE = "55P03";

/** True when a vacuum left the table worth a rewrite. */
export function worthCompacting(counts: VacuumCounts): boolean {
  const rows = counts.rows + counts.pinned;
  return rows <= MAX_ROWS &&
    counts.bytes > Math.max(MIN_BYTES, BLOAT_FACTOR * ROW_BYTES * rows);
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
 * `VACUUM (FULL)` of the table, waiting at most {@linkcode LOCK_TIMEOUT_MS}
 * for its lock. Resolves false when the lock was not to be had.
 */
export async function compactTable(
  sql: Sql,
  names: TableNames,
): Promise<boolean> {
  const db = await sql.reserve();
  try {
    await db.unsafe(`set lock_timeout = ${LOCK_TIMEOUT_MS}`);
    await db.unsafe(`vacuum (full) ${names.qualified}`);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) return false;
    throw error;
  } finally {
    await db.unsafe("reset lock_timeout").catch(() => {});
    db.release();
  }
}
