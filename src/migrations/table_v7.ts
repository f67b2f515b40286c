/**
 * The job table, version 7: the same state check, in a form the server
 * reads back faster.
 *
 * PostgreSQL 15 keeps a check constraint as the text of its expression tree
 * and reads that text back into a tree in every insert or update statement
 * (the executor caches it for one statement, not across statements). Written
 * as `state in ('ready', ..., 'done')`, as step 3 wrote it, the tree holds
 * an array expression of seven constants, each a node of a dozen fields:
 * reading it cost a single put as much server work as the insert trigger
 * (bench/RESULTS.md, "Single put"). As one constant array,
 * `state = any ('{ready,...,done}'::text[])`, it accepts exactly the same
 * states and reads back with much less work; rows are checked as before,
 * per row, with the same operator.
 *
 * The constraint is replaced in one statement, `not valid` as in step 3:
 * every existing row passed the same check, so scanning a live table under
 * its exclusive lock to prove it again would only stop it.
 *
 * @module
 */

import { quoteIdent } from "../names.ts";
import type { TableNames } from "../schema.ts";

/** The statements of table step 7. */
export function tableV7(n: TableNames): string[] {
  const check = quoteIdent(n.objects.stateCheck);
  return [
    `alter table ${n.qualified} drop constraint ${check},
      add constraint ${check}
      check (state = any ('{ready,scheduled,running,completed,failed,cancelled,done}'::text[]))
      not valid`,
  ];
}
