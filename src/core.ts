/**
 * What every queue of one PQ shares: the client, the table's names and
 * statements, the codecs, the listener and the defaults.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { Listener } from "./listener.ts";
import type { TableNames } from "./schema.ts";
import { insertJobSql, insertJobsSql } from "./sql/insert_jobs.ts";
import { promoteDueJobsSql, takeJobsSql } from "./sql/take_jobs.ts";
import type { TaskRegistry } from "./tasks.ts";
import type { Sql } from "./types.ts";

/** Statement texts of the hot path, built once per PQ. */
export interface Statements {
  insertJob: string;
  insertJobs: string;
  takePlain: string;
  takeTask: string;
  promoteDue: string;
}

/** Builds the hot-path statements of a table. */
export function buildStatements(names: TableNames): Statements {
  return {
    insertJob: insertJobSql(names),
    insertJobs: insertJobsSql(names),
    takePlain: takeJobsSql(names, false),
    takeTask: takeJobsSql(names, true),
    promoteDue: promoteDueJobsSql(names),
  };
}

/** The state one PQ shares with its queues. Internal. */
export interface PQCore {
  /** The caller's client. */
  sql: Sql;
  /** The table's names (unqualified when no schema was given). */
  names: TableNames;
  /** Hot-path statements. */
  statements: Statements;
  /** The codec of queues without a suffix. */
  defaultCodec: Codec;
  /** Codecs by suffix name. */
  codecs: Map<string, Codec>;
  /** Default get() timeout in milliseconds. */
  timeoutMs: number;
  /** Wakes waiting getters and workers. */
  listener: Listener;
  /** Registered tasks, by queue name. */
  tasks: Map<string, TaskRegistry>;
  /** Set by `close()`. */
  closed: boolean;
}
