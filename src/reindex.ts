/**
 * Rebuilds the indexes of a queue table that a pinned horizon left bloated,
 * where pq vacuums the table itself (see `vacuum.ts`).
 *
 * While an old snapshot pins the horizon, every job taken leaves its entries
 * in each index of the table, and the indexes grow page by page (a 90 s pin
 * at 500 jobs/s: 45,000 entries). VACUUM removes the entries once the pin
 * ends, but a B-tree never gives its pages back: the files keep their
 * largest size, a hundred times what a small live queue needs.
 * `REINDEX INDEX CONCURRENTLY` builds a fresh copy beside the old one and
 * swaps them without blocking puts or takes (Oban's Reindexer plugin does
 * the same on a schedule).
 *
 * It runs after a vacuum, for an index over the bar of
 * {@linkcode bloatBar} (1 MiB, and ten times what the table's rows need),
 * as that vacuum counted them: its live rows and the dead
 * rows it had to leave because a snapshot still sees them (see
 * `vacuum_counts.ts`). While the horizon is pinned the second count keeps
 * the bar out of reach, so no rebuild starts: it would copy those entries,
 * and `REINDEX CONCURRENTLY` waits for old snapshots before it swaps. (The
 * first version of this module counted only the live rows, and rebuilt
 * every turn of a pin, each rebuild scanning the table and waiting out its
 * `lock_timeout`.) Its waits are bounded by `lock_timeout`: a reindex that
 * waits for an old transaction fails instead, leaving an invalid copy
 * (`..._ccnew`), which the next turn drops.
 *
 * @module
 */

import type { TableNames } from "./schema.ts";
import type { Sql } from "./types.ts";
import { withLockTimeout } from "./lock_timeout.ts";
import {
  bloatBar,
  readVacuumCounts,
  type VacuumCounts,
} from "./vacuum_counts.ts";

/** Generous bytes per entry (the queue name is in every index's key). */
const ENTRY_BYTES = 100;

/** How long a rebuild's statements may wait for a lock or a transaction. */
const REINDEX_LOCK_TIMEOUT = "2s";

/** What one turn did: the indexes rebuilt and the leftovers dropped. */
export interface ReindexTurn {
  rebuilt: string[];
  dropped: string[];
}

/**
 * Drops invalid copies a failed rebuild left, then rebuilds the table's
 * bloated indexes. Run outside any transaction, after a VACUUM of the table.
 *
 * @param counts What that vacuum left, if read already.
 */
export async function reindexBloated(
  sql: Sql,
  names: TableNames,
  counts?: VacuumCounts | null,
): Promise<ReindexTurn> {
  const turn: ReindexTurn = { rebuilt: [], dropped: [] };
  const table = counts === undefined
    ? await readVacuumCounts(sql, names)
    : counts;
  if (!table) return turn;
  const floor = bloatBar(table, ENTRY_BYTES);
  // A transaction that held on ends the turn: the next tries again.
  await withLockTimeout(sql, REINDEX_LOCK_TIMEOUT, async (db) => {
    if (table.leftovers) {
      for (const name of await invalidCopies(db, names)) {
        await db.unsafe(`drop index concurrently if exists ${name}`);
        turn.dropped.push(name);
      }
    }
    for (const name of await largerThan(db, names, floor)) {
      await db.unsafe(`reindex index concurrently ${name}`);
      turn.rebuilt.push(name);
    }
  });
  return turn;
}

/**
 * The invalid indexes of the table whose names a concurrent rebuild gives
 * its copies (`_ccnew`, `_ccnew1`, ...), qualified and quoted.
 */
async function invalidCopies(db: Sql, names: TableNames): Promise<string[]> {
  const rows = await db.unsafe(
    `select i.indexrelid::regclass::text as name from pg_index as i
      join pg_class as c on c.oid = i.indexrelid
      where i.indrelid = $1::regclass and not i.indisvalid
        and c.relname ~ '_ccnew[0-9]*$'`,
    [names.qualified],
  );
  return rows.map((row) => row.name as string);
}

/** The valid indexes of the table larger than `bytes`, qualified. */
async function largerThan(
  db: Sql,
  names: TableNames,
  bytes: number,
): Promise<string[]> {
  const rows = await db.unsafe(
    `select i.indexrelid::regclass::text as name from pg_index as i
      where i.indrelid = $1::regclass and i.indisvalid
        and pg_relation_size(i.indexrelid) > $2::float8
      order by pg_relation_size(i.indexrelid) desc`,
    [names.qualified, bytes],
  );
  return rows.map((row) => row.name as string);
}
