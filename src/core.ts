/**
 * What every queue of one PQ shares: the client, the table's names and
 * statements, the codecs, the listener, the running workers and the
 * defaults.
 *
 * @module
 */

import type { Codec } from "./codecs.ts";
import type { Counters } from "./counters.ts";
import type { Listener } from "./listener.ts";
import type { Pruner } from "./pruner.ts";
import type { Report } from "./report.ts";
import type { TableNames } from "./schema.ts";
import { type InsertStatements, insertStatements } from "./sql/insert_jobs.ts";
import { claimJobsSql } from "./sql/lease_jobs.ts";
import { takeLimitedSql } from "./sql/take_limited.ts";
import {
  promoteDueJobsSql,
  takeJobsSql,
  type TakeShape,
} from "./sql/take_jobs.ts";
import type { TakeMarks } from "./take_marks.ts";
import type { TaskRegistry } from "./tasks.ts";
import type { Telemetry } from "./telemetry.ts";
import type { Sql } from "./types.ts";
import type { Vacuum } from "./vacuum.ts";

/** Statement texts of the hot path, built once per PQ. */
export interface Statements {
  /** Inserts on the client or a transaction the caller manages. */
  insert: InsertStatements;
  /** Inserts for a queue bound with `with(tx)`: they check the binding. */
  insertBound: InsertStatements;
  promoteDue: string;
  /** The take statement of a shape (see `takeJobsSql`). */
  take(shape: TakeShape): string;
  /** The lease claim for a limit (see `claimJobsSql`). */
  claim(limit: number, ignoreDue: boolean, marked: boolean): string;
  /** The take of a task with limits (see `takeLimitedSql`). */
  takeLimited(limit: number, ignoreDue: boolean): string;
}

/** Builds the hot-path statements of a table. */
export function buildStatements(names: TableNames): Statements {
  // Keyed by a number, so that a take allocates no key string.
  const takes = new Map<number, string>();
  const claims = new Map<number, string>();
  const limited = new Map<number, string>();
  return {
    insert: insertStatements(names, false),
    insertBound: insertStatements(names, true),
    promoteDue: promoteDueJobsSql(names),
    take(shape) {
      const key = shape.limit * 16 + (shape.marked ? 8 : 0) +
        (shape.task ? 4 : 0) + (shape.ignoreDue ? 2 : 0) +
        (shape.bound ? 1 : 0);
      let text = takes.get(key);
      if (!text) takes.set(key, text = takeJobsSql(names, shape));
      return text;
    },
    claim(limit, ignoreDue, marked) {
      const key = limit * 4 + (marked ? 2 : 0) + (ignoreDue ? 1 : 0);
      let text = claims.get(key);
      if (!text) {
        claims.set(key, text = claimJobsSql(names, limit, ignoreDue, marked));
      }
      return text;
    },
    takeLimited(limit, ignoreDue) {
      const key = limit * 2 + (ignoreDue ? 1 : 0);
      let text = limited.get(key);
      if (!text) {
        limited.set(key, text = takeLimitedSql(names, limit, ignoreDue));
      }
      return text;
    },
  };
}

/** A running `work()` as the PQ sees it: `close()` stops and awaits it. */
export interface RunningWorker {
  /** Stops taking jobs; running ones get their grace period. */
  stop(): void;
  /** Settles when every slot stopped. */
  readonly done: Promise<unknown>;
  /** The connections its slots may hold at once. */
  readonly connections: number;
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
  /** Where each lane's takes start (see `take_marks.ts`). */
  marks: TakeMarks;
  /** Registered tasks, by queue name. */
  tasks: Map<string, TaskRegistry>;
  /** Running workers. */
  workers: Set<RunningWorker>;
  /** Where background failures and warnings go. */
  report: Report;
  /** Removes finished jobs past their retention. */
  pruner: Pruner;
  /** Counts finished jobs per minute for `stats()`. */
  counters: Counters;
  /**
   * Spans and metrics: null without OpenTelemetry (not installed, or
   * `telemetry: false`), undefined while `@opentelemetry/api` loads.
   */
  telemetry: Telemetry | null | undefined;
  /** Settles once `telemetry` is known (see `telemetry.ts`). */
  telemetryLoaded: Promise<Telemetry | null> | null;
  /** Set by `close()`. */
  closed: boolean;
}
