/**
 * What a VACUUM of a queue table left, as the server counts it: the bar
 * that pq's index rebuilds (`reindex.ts`) and table compaction
 * (`compact.ts`) must clear.
 *
 * - Live rows: `pg_class.reltuples`, which the vacuum sets. It counts live
 *   rows only, not the dead rows a pin keeps (bench/RESULTS.md, pressure).
 * - Pinned rows: the dead rows the vacuum had to leave because a snapshot
 *   still sees them, `n_dead_tup` of `pg_stat_all_tables`, which the vacuum
 *   sets to that count. While the horizon is pinned, they keep every bar
 *   out of reach: a rebuild or a rewrite would copy them, and wait for the
 *   pin to end. Deletes that the statistics hear of after the vacuum count
 *   too (a connection reports its counts at most once a second while busy,
 *   10 s after it went idle, or when it closes): a turn right after a large
 *   `clear()`, or right after a pin, may skip what a later turn does.
 *
 * Before PostgreSQL 15, the statistics came through a collector whose
 * answers could be half a second old, older than the vacuum: there the
 * counts are read a second after it.
 *
 * @module
 */

import { delay } from "./delay.ts";
import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";

/** How stale a PostgreSQL 14 backend's statistics may be, with margin. */
const STATS_COLLECTOR_LAG_MS = 1_000;

/** What a vacuum left of a table. */
export interface VacuumCounts {
  /** Live rows. */
  rows: number;
  /** Dead rows that a snapshot still sees. */
  pinned: number;
  /** The table's heap, in bytes (without its indexes and TOAST). */
  bytes: number;
  /** An index a failed concurrent rebuild left invalid exists. */
  leftovers: boolean;
}

/**
 * Reads what the last VACUUM of the table left; null when the table is
 * gone. Run right after the vacuum.
 */
export async function readVacuumCounts(
  sql: Sql,
  names: TableNames,
): Promise<VacuumCounts | null> {
  const [{ version }] = await sql.unsafe(
    `select current_setting('server_version_num')::int4 as version`,
  );
  if (version < 150000) await delay(STATS_COLLECTOR_LAG_MS);
  const [table] = await sql.unsafe(
    `select greatest(c.reltuples, 0)::float8 as rows,
        greatest(coalesce(s.n_dead_tup, 0), 0)::float8 as pinned,
        pg_relation_size(c.oid)::float8 as bytes,
        exists (select 1 from pg_index as i where i.indrelid = c.oid
          and not i.indisvalid) as leftovers
      from pg_class as c
      left join pg_stat_all_tables as s on s.relid = c.oid
      where c.oid = $1::regclass`,
    [names.qualified],
  );
  return table
    ? {
      rows: table.rows,
      pinned: table.pinned,
      bytes: table.bytes,
      leftovers: table.leftovers,
    }
    : null;
}

/** Never worth rewriting or rebuilding below this many bytes. */
const MIN_BLOAT_BYTES = 1 << 20;
/** Worth it at this many times the bytes the rows need. */
const BLOAT_FACTOR = 10;

/**
 * The size above which a table or index is bloated: 1 MiB, and ten times
 * `unitBytes` (a generous size of one row or entry) for each row the
 * vacuum left, live or pinned.
 */
export function bloatBar(counts: VacuumCounts, unitBytes: number): number {
  return Math.max(
    MIN_BLOAT_BYTES,
    BLOAT_FACTOR * unitBytes * (counts.rows + counts.pinned),
  );
}
