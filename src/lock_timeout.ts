/**
 * Statements that may wait for a lock, but not for long: pq's own upkeep
 * (`reindex.ts`, `compact.ts`) runs beside the queue's puts and takes, and
 * gives up until its next turn rather than hold them up.
 *
 * @module
 */

import type { Sql } from "./types.ts";

/** SQLSTATE of a wait that `lock_timeout` ended. */
const LOCK_NOT_AVAILABLE = "55P03";

/**
 * Runs `run` on a connection of its own whose waits for a lock end after
 * `timeout` (a PostgreSQL duration, like `"2s"` or `"100ms"`).
 *
 * @returns What `run` returned, or null when a wait for a lock ended it.
 */
export async function withLockTimeout<T>(
  sql: Sql,
  timeout: string,
  run: (db: Sql) => Promise<T>,
): Promise<T | null> {
  const db = await sql.reserve();
  try {
    await db.unsafe(`set lock_timeout = '${timeout}'`);
    return await run(db);
  } catch (error) {
    if ((error as { code?: string }).code === LOCK_NOT_AVAILABLE) return null;
    throw error;
  } finally {
    await db.unsafe("reset lock_timeout").catch(() => {});
    db.release();
  }
}
