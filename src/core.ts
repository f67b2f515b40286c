/**
 * What every queue of one PQ shares: the client, the table's names and
 * statements, the codecs, the listener and the defaults.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { Listener } from "./listener.ts";
import type { TableNames } from "./schema.ts";
import {
  insertJobSql,
  insertJobsSql,
  insertReadyJobsSql,
} from "./sql/insert_jobs.ts";
import { promoteDueJobsSql, takeJobsSql } from "./sql/take_jobs.ts";
import type { TaskRegistry } from "./tasks.ts";
import type { Sql } from "./types.ts";
import type { Vacuum } from "./vacuum.ts";

/** Statement texts of the hot path, built once per PQ. */
export interface Statements {
  insertJob: string;
  insertJobs: { timed: string; ready: string };
  promoteDue: string;
  /** The take statement of a lane for a limit (see `takeJobsSql`). */
  take(task: boolean, limit: number, ignoreDue: boolean): string;
}

/** Builds the hot-path statements of a table. */
export function buildStatements(names: TableNames): Statements {
  // Keyed by a number, so that a take allocates no key string.
  const takes = new Map<number, string>();
  return {
    insertJob: insertJobSql(names),
    insertJobs: {
      timed: insertJobsSql(names),
      ready: insertReadyJobsSql(names),
    },
    promoteDue: promoteDueJobsSql(names),
    take(task, limit, ignoreDue) {
      const key = limit * 4 + (task ? 2 : 0) + (ignoreDue ? 1 : 0);
      let text = takes.get(key);
      if (!text) {
        takes.set(key, text = takeJobsSql(names, task, limit, ignoreDue));
      }
      return text;
    },
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
  /** Vacuums the table when autovacuum does not. */
  vacuum: Vacuum;
  /** Registered tasks, by queue name. */
  tasks: Map<string, TaskRegistry>;
  /** Set by `close()`. */
  closed: boolean;
}
