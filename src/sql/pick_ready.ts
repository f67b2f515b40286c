/**
 * Picking ready jobs: the index walk shared by the take (`take_jobs.ts`) and
 * the lease claim (`lease_jobs.ts`), from the start of the lane's index or
 * past its low-water marks (see `take_marks.ts`).
 *
 * @module
 */

import type { TableNames } from "../schema.ts";

/** The ready jobs of a lane, as a walk of its partial index picks them. */
export interface PickShape {
  /** The lane's filter after `queue = $1 and state = 'ready'`. */
  where: string;
  /** How many jobs at most (written into the text). */
  limit: number;
  /**
   * null: walk the index from its start. A number n: start past the lane's
   * marks, bound as $n (the earliest `expected_at` to look at, as text),
   * $n+1 (the least id with that `expected_at`) and $n+2 (the least id among
   * jobs without `expected_at`).
   */
  markParam: number | null;
}

/** The picking part of a take statement: CTEs to put first, and the ids. */
export interface PickSql {
  /** CTEs (each followed by a comma) that must precede the statement's. */
  ctes: string;
  /** An `int8[]` expression: the ids picked, locked for the taker. */
  ids: string;
}

/**
 * Builds the pick of up to `limit` ready jobs in the queue's order
 * (`expected_at` nulls last, then `id`), locked `for no key update skip
 * locked` so that takers skip each other's rows.
 *
 * From the start, it is one walk of the index, which PostgreSQL stops after
 * `limit` rows it could lock. Past marks, it is two walks, each starting at
 * its mark instead of the index's first entry: jobs with an `expected_at`
 * (they come first in the order), then jobs without one, only as many as the
 * first walk left to take. Both walks are index range scans on
 * `(queue, expected_at, id)`: a row comparison for the first, `is null` and
 * `id >=` for the second. Entries before the marks are never visited, which
 * is the point: while an old snapshot pins the horizon, they are the entries
 * of jobs already taken, which no scan may mark dead.
 */
export function pickReadySql(names: TableNames, shape: PickShape): PickSql {
  const t = names.qualified;
  const lock = "for no key update skip locked";
  const limit = Math.trunc(shape.limit);
  const ready = `queue = $1 and state = 'ready' and ${shape.where}`;
  if (shape.markParam === null) {
    return {
      ctes: "",
      ids: `array(select id from ${t} where ${ready}
        order by expected_at, id limit ${limit} ${lock})`,
    };
  }
  const n = shape.markParam;
  return {
    ctes: `early as (
        select id from ${t} where ${ready} and expected_at is not null
          and (expected_at, id) >= ($${n}::text::timestamptz, $${n + 1}::int8)
        order by expected_at, id limit ${limit} ${lock}
      ), late as (
        select id from ${t} where ${ready} and expected_at is null
          and id >= $${n + 2}::int8
        order by expected_at, id
        limit ${limit} - (select count(*) from early) ${lock}
      ),`,
    ids: `array(select id from early union all select id from late)`,
  };
}
