/**
 * The savepoint each job of a batch runs in, so that a failure rolls back
 * only that job's own writes, opened only once its handler uses `job.tx`.
 *
 * Why lazily: postgres.js opens a savepoint with a round trip of its own
 * before its callback runs. For a handler that never uses `job.tx` that
 * round trip was most of a job's cost: a batch of no-op jobs ran at less
 * than half the rate without it (bench/RESULTS.md, the run "a job's
 * savepoint only when its handler uses job.tx"). A job that never used
 * `job.tx` has nothing to roll back, so it needs none.
 *
 * How: each batch opens one postgres.js savepoint scope, right behind its
 * take (pipelined, no round trip of its own), whose callback never settles.
 * Jobs query through that scope, so that a statement of a job that fails
 * is never the batch transaction's uncaught error (postgres.js would roll
 * the whole batch back for it), and the scope's own error is never looked
 * at. A job's savepoint is a plain `savepoint pq_job`, sent through the
 * scope on the first use of `job.tx`, so ahead of its first statement and
 * pipelined with it. Once the handler returned it is released: a release
 * that fails because the transaction was left aborted means a statement of
 * the job failed though the handler went on, and the job fails with it.
 * When the handler threw, the job's writes are rolled back to it.
 *
 * What it costs: nothing for a job that never uses `job.tx`; for one that
 * does, the release's round trip once the handler returned, where postgres.js
 * made the savepoint's own round trip before it started.
 *
 * @module
 */

import type { TransactionSql } from "./types.ts";

/** The name of a job's savepoint; each is released or rolled back to. */
const JOB_SAVEPOINT = "pq_job";

/** The scope the jobs of one batch query through. */
export interface JobScope {
  /** What a job's `job.tx` wraps. */
  readonly tx: TransactionSql;
  /** A savepoint for the next job, not sent yet. */
  job(): JobSavepoint;
}

/** One job's savepoint, sent on the first use of its `job.tx`. */
export interface JobSavepoint {
  /** Sends the savepoint unless it was sent: called on each use of `job.tx`. */
  open(): void;
  /**
   * Remembers a statement of the job, to learn if it fails; `job.tx` calls
   * this with each query it returns.
   */
  watch<T>(result: T): T;
  /**
   * After the handler returned: releases the savepoint (if it was sent).
   * Rejects when the transaction was left aborted by a statement of the
   * job that failed, even one the handler caught: with that statement's
   * error when it was watched, else with the release's own.
   */
  release(): Promise<void>;
  /** After the handler threw: undoes the job's writes (if any). */
  rollback(): Promise<void>;
}

/**
 * Opens the job scope of a batch: sent at once, behind whatever was sent
 * on `tx` before (the take). Resolves once the scope exists.
 */
export function openJobScope(tx: TransactionSql): Promise<JobScope> {
  return new Promise<JobScope>((resolve, reject) => {
    tx.savepoint((sp) => {
      resolve({ tx: sp, job: () => jobSavepoint(sp) });
      // Never settles: postgres.js would then release or roll back the
      // scope, and check its uncaught error (a job's failed statement).
      // Once nothing refers to it, it is collected with the batch.
      return new Promise<never>(() => {});
    }).catch(reject);
  });
}

/** A job's savepoint on the batch's job scope `sp`. */
function jobSavepoint(sp: TransactionSql): JobSavepoint {
  let opened = false;
  let failure: { error: unknown } | null = null;
  const note = (error: unknown) => {
    failure ??= { error };
  };
  return {
    open() {
      if (opened) return;
      opened = true;
      // Executed now (the catch), so it is sent before the statement whose
      // use opened it, which postgres.js sends one tick later.
      sp.unsafe(`savepoint ${JOB_SAVEPOINT}`).catch(note);
    },
    watch(result) {
      const query = result as { then?: unknown } | null;
      if (typeof query?.then !== "function") return result;
      // Wrapping `then` (not calling it) leaves the query unsent until the
      // handler awaits it: a fragment nested in another query is never
      // sent on its own. postgres.js's own `catch` goes through `then`.
      // A cursor's error does not reject its query: a job whose handler
      // caught one fails with the release's "transaction is aborted".
      const then = query.then as (...args: unknown[]) => unknown;
      query.then = function (
        this: unknown,
        ok?: (value: unknown) => unknown,
        fail?: (error: unknown) => unknown,
      ) {
        return then.call(this, ok, (error: unknown) => {
          note(error);
          if (fail) return fail(error);
          throw error;
        });
      };
      return result;
    },
    async release() {
      if (!opened) return;
      try {
        await sp.unsafe(`release savepoint ${JOB_SAVEPOINT}`);
      } catch (error) {
        // A statement of the job failed and left the transaction aborted
        // (25P02): the job failed with it, though the handler went on. Any
        // other failure (the connection closed) is the release's own.
        const aborted = (error as { code?: unknown }).code === "25P02";
        throw aborted && failure ? failure.error : error;
      }
    },
    async rollback() {
      if (!opened) return;
      opened = false;
      // Sent together: the second only ends the savepoint that the first
      // emptied, so the next job's savepoint is not nested in it.
      const back = sp.unsafe(`rollback to savepoint ${JOB_SAVEPOINT}`);
      const end = sp.unsafe(`release savepoint ${JOB_SAVEPOINT}`);
      await Promise.all([back, end]);
    },
  };
}
