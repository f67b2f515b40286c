/**
 * A PQ's counts of finished task jobs per minute, buffered in memory and
 * written to `pq_counts` in one upsert every few seconds (and when a worker
 * stops, and at `close()`), so the charts of `stats()` cost no write per
 * job.
 *
 * Why here and not in the batch's transaction: an extra statement in every
 * batch would cost a round trip per batch on the hot path (a batch of one
 * job is begin, take, commit: a fourth statement is a third more), and it
 * would take row locks on `pq_counts` that every worker of a queue shares,
 * serializing their commits. Workers count an outcome only once its batch
 * committed (`Worker.#report`), so a rolled-back batch is never counted;
 * the price is that a process that dies loses up to {@linkcode FLUSH_MS}
 * of counts. They are statistics, not a ledger.
 *
 * @module
 */

import { backgroundError, type Report } from "./report.ts";
import type { TableNames } from "./schema.ts";
import { addCounts, type CountRow } from "./sql/counts.ts";
import type { Sql } from "./types.ts";
import type { WorkStats } from "./work_options.ts";

/** Counts wait in memory at most this long. */
export const FLUSH_MS = 5_000;
/** Counts that could not be written are dropped after this long. */
const GIVE_UP_MS = 60 * 60_000;

/** Buffers one PQ's counts; see the module doc. */
export class Counters {
  readonly #sql: Sql;
  readonly #names: TableNames;
  readonly #report: Report;
  readonly #pending = new Map<string, CountRow>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(sql: Sql, names: TableNames, report: Report) {
    this.#sql = sql;
    this.#names = names;
    this.#report = report;
  }

  /** Counts one job of `queue` and `task` that ended as `stat`, now. */
  add(queue: string, task: string, stat: keyof WorkStats): void {
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const key = `${minute}\0${queue}\0${task}`;
    let row = this.#pending.get(key);
    if (!row) {
      row = { queue, task, minute, completed: 0, failed: 0, retried: 0 };
      this.#pending.set(key, row);
    }
    if (stat === "done") row.completed++;
    else row[stat]++;
    this.#arm();
  }

  /** Writes what is buffered; resolves once written (or reported). */
  flush(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    return this.#flushing = this.#flushing.then(() => this.#write());
  }

  /** Writes what is buffered, and keeps no timer from now on. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.flush();
  }

  #arm(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush();
    }, FLUSH_MS);
    // On Node and Bun, pending counts alone do not keep a process alive
    // (a worker that stops flushes them anyway).
    (this.#timer as { unref?: () => void }).unref?.();
  }

  async #write(): Promise<void> {
    if (this.#pending.size === 0) return;
    const rows = [...this.#pending.values()].sort(compareRows);
    this.#pending.clear();
    try {
      await addCounts(this.#sql, this.#names, rows);
    } catch (error) {
      // The caller ended the client: nobody will write these any more.
      if ((error as { code?: unknown })?.code === "CONNECTION_ENDED") return;
      this.#report(backgroundError("Writing job counts", error));
      // Kept for the next flush (the next count arms it), unless too old
      // to be charted.
      const oldest = Date.now() - GIVE_UP_MS;
      for (const row of rows) {
        if (row.minute < oldest) continue;
        const key = `${row.minute}\0${row.queue}\0${row.task}`;
        const newer = this.#pending.get(key);
        if (newer) {
          newer.completed += row.completed;
          newer.failed += row.failed;
          newer.retried += row.retried;
        } else this.#pending.set(key, row);
      }
    }
  }
}

/** The order of the table's primary key (after relid). */
function compareRows(a: CountRow, b: CountRow): number {
  return a.queue < b.queue
    ? -1
    : a.queue > b.queue
    ? 1
    : a.task < b.task
    ? -1
    : a.task > b.task
    ? 1
    : a.minute - b.minute;
}
