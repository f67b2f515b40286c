/**
 * The savepoint each job of a batch runs in, so that a failure rolls back
 * only that job's own writes.
 *
 * @module
 */

import type { TransactionSql } from "./types.ts";

/** A savepoint a job runs in: `use(fn)` runs fn in it; `skip()` does not. */
export interface Savepoint {
  use(fn: (sp: TransactionSql) => Promise<void>): Promise<unknown>;
  skip(): Promise<unknown>;
}

/**
 * A savepoint sent before it is known to be needed: postgres.js sends it as
 * soon as this is called (pipelined behind the statement sent before), and
 * runs the function given to `use()` in it once it exists. `skip()` leaves
 * it empty, which costs nothing more. The worker sends the first job's
 * savepoint right behind the take, so that a batch of one costs the begin,
 * take and commit round trips, not four (bench/RESULTS.md, latency).
 */
export function earlySavepoint(tx: TransactionSql): Savepoint {
  type Work = ((sp: TransactionSql) => Promise<void>) | null;
  let choose!: (work: Work) => void;
  const chosen = new Promise<Work>((resolve) => (choose = resolve));
  const scope = tx.savepoint(async (sp) => {
    const work = await chosen;
    if (work) await work(sp);
  });
  // Awaited through use() or skip(); this only keeps an error from being
  // reported as unhandled when the batch failed before either.
  scope.catch(() => {});
  return {
    use(work) {
      choose(work);
      return scope;
    },
    skip() {
      choose(null);
      return scope;
    },
  };
}

/** A savepoint opened when the job starts. */
export function lateSavepoint(tx: TransactionSql): Savepoint {
  return {
    use: (work) => tx.savepoint(work),
    skip: () => Promise.resolve(),
  };
}
