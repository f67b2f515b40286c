/**
 * The job table, version 3: the job lifecycle (leases, cancellation,
 * snooze, progress, results and retention).
 *
 * - New states: `running` (a lease job, claimed and committed), `completed`
 *   (kept for `keep.completed`) and `cancelled`. The state check is replaced
 *   by a wider one, added `not valid`: every existing row passed the
 *   narrower check, so scanning a live table under an exclusive lock to
 *   prove it again would only stop it.
 * - New columns, all nullable without defaults (no table rewrite):
 *   `started_at`, `lease_until` and `lease_token` (the fencing token of the
 *   claim), `max_attempts`, `progress` and `result`.
 * - `running_idx` finds expired leases; `finished_at_idx` lets the pruner
 *   delete old finished jobs in small batches without scanning the table.
 *
 * @module
 */

import { quoteIdent } from "../names.ts";
import type { TableNames } from "../schema.ts";

/** The statements of table step 3. */
export function tableV3(n: TableNames): string[] {
  const t = n.qualified;
  const o = n.objects;
  return [
    `alter table ${t} drop constraint ${quoteIdent(o.stateCheck)}`,
    `alter table ${t} add constraint ${quoteIdent(o.stateCheck)}
      check (state in ('ready', 'scheduled', 'running', 'completed',
        'failed', 'cancelled', 'done')) not valid`,
    `alter table ${t}
      add column started_at timestamptz,
      add column lease_until timestamptz,
      add column lease_token int8,
      add column max_attempts int4,
      add column progress json,
      add column result json`,
    `create index ${quoteIdent(o.runningIndex)} on ${t} (queue, lease_until)
      where state = 'running'`,
    `create index ${quoteIdent(o.finishedAtIndex)} on ${t} (finished_at)
      where state in ('completed', 'failed', 'cancelled')`,
  ];
}
