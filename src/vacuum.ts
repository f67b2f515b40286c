/**
 * Vacuums a queue table where nothing else does.
 *
 * Every job taken deletes a row. Until VACUUM runs, the dead rows stay: the
 * table grows, its pages never come back to the free space map, and each take
 * walks over dead entries at the head of the ready index. With autovacuum on
 * (the default, and `create()` sets the table's autovacuum to act after 1,000
 * dead rows instead of 20% of the table), the server takes care of it. With
 * autovacuum off, as on our CI machine, a million jobs through one queue
 * went from 12,800 to 8,300 jobs/s and the table to 149 MB; with a VACUUM
 * every 10 s, the last 100,000 jobs went as fast as the first and the table
 * stayed under 45 MB (bench/RESULTS.md, churn).
 *
 * So when the server's autovacuum is off (or off for this table) and the
 * client owns the table, pq runs `VACUUM (SKIP_LOCKED)` itself: after at
 * least 10,000 jobs were taken through this PQ and at most once per 10 s. It
 * runs in the background on the caller's pool, never inside a transaction,
 * and the VACUUM never blocks reads or writes of the queue. After a vacuum
 * that found no pinned rows, it rewrites a table that a pinned horizon left
 * bloated and nearly empty, which holds puts and takes while it waits for
 * its lock (at most 100 ms) and copies the table (at most 32 MiB and 10,000
 * rows; see `compact.ts`), or else rebuilds the indexes that the pin left
 * bloated, which blocks nothing (see `reindex.ts`).
 *
 * @module
 */

import { Compactor } from "./compact.ts";
import { reindexBloated } from "./reindex.ts";
import { backgroundError, type Report } from "./report.ts";
import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";
import { readVacuumCounts, type VacuumCounts } from "./vacuum_counts.ts";

/** Rows taken before a vacuum is worth it. */
const VACUUM_AFTER_ROWS = 10_000;
/** The shortest time between two vacuums of one PQ. */
const VACUUM_INTERVAL_MS = 10_000;

/** Counts taken rows and vacuums the table when nothing else does. */
export class Vacuum {
  readonly #sql: Sql;
  readonly #names: TableNames;
  readonly #report: Report;
  /** null: not known yet; decided on the first vacuum that is due. */
  #needed: boolean | null;
  #taken = 0;
  #last = performance.now();
  #running: Promise<void> | null = null;
  readonly #compactor = new Compactor();

  /**
   * @param enabled False when the caller turned it off (option `vacuum`).
   * @param report Where a failed vacuum is reported.
   */
  constructor(
    sql: Sql,
    names: TableNames,
    enabled: boolean,
    report: Report,
  ) {
    this.#sql = sql;
    this.#names = names;
    this.#report = report;
    this.#needed = enabled ? null : false;
  }

  /** Notes that `count` rows were deleted; vacuums when it is time. */
  noteTaken(count: number): void {
    if (this.#needed === false || count === 0) return;
    this.#taken += count;
    if (
      this.#running || this.#taken < VACUUM_AFTER_ROWS ||
      performance.now() - this.#last < VACUUM_INTERVAL_MS
    ) return;
    this.#running = this.#run().finally(() => {
      this.#running = null;
    });
  }

  /** Waits for a vacuum under way. */
  async close(): Promise<void> {
    this.#needed = false;
    await this.#running;
  }

  async #run(): Promise<void> {
    this.#taken = 0;
    this.#last = performance.now();
    try {
      this.#needed ??= await this.#isNeeded();
      if (this.#needed) {
        await this.#sql.unsafe(`vacuum (skip_locked) ${this.#names.qualified}`);
      }
    } catch (error) {
      // The next turn tries again; a queue works without it, only slower.
      this.#report(
        backgroundError(`VACUUM of ${this.#names.qualified}`, error),
      );
      return;
    }
    if (!this.#needed) return;
    let counts: VacuumCounts | null;
    try {
      counts = await readVacuumCounts(this.#sql, this.#names);
    } catch (error) {
      this.#report(
        backgroundError(
          `Reading what VACUUM left of ${this.#names.qualified}`,
          error,
        ),
      );
      return;
    }
    if (!counts) return; // the table is gone
    try {
      if (await this.#compactor.compact(this.#sql, this.#names, counts)) {
        return; // its indexes were rebuilt with it
      }
    } catch (error) {
      this.#report(
        backgroundError(`VACUUM (FULL) of ${this.#names.qualified}`, error),
      );
    }
    try {
      await reindexBloated(this.#sql, this.#names, counts);
    } catch (error) {
      this.#report(
        backgroundError(`REINDEX of ${this.#names.qualified}`, error),
      );
    }
  }

  /**
   * True when neither the server nor the table's settings let autovacuum
   * run, and this client owns the table (only the owner may vacuum it).
   */
  async #isNeeded(): Promise<boolean> {
    const [row] = await this.#sql.unsafe(
      `select (current_setting('autovacuum') = 'off'
          or coalesce(c.reloptions @> array['autovacuum_enabled=false'], false))
        and pg_has_role(c.relowner, 'usage') as needed
      from pg_class as c where c.oid = $1::regclass`,
      [this.#names.qualified],
    );
    return row?.needed === true;
  }
}
