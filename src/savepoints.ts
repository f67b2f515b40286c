/**
 * The savepoint each job of a batch runs in, so that a failure rolls back
 * only that job's own writes, opened only once its handler uses `job.tx`.
 *
 * Why lazily: postgres.js opens a savepoint with a round trip of its own
 * before its callback runs. For a handler that never writes through
 * `job.tx` that round trip was most of a job's cost: 20,000 no-op jobs at
 * concurrency 8 ran at 4,700 jobs/s with a savepoint per job and 11,300
 * without (bench/RESULTS.md, work). A job that never used `job.tx` has
 * nothing to roll back, so it needs none.
 *
 * How: each batch opens one postgres.js savepoint scope, right behind its
 * take (pipelined, no round trip of its own), whose callback never settles.
 * Jobs query through that scope, so that a statement of a job that fails
 * is never the batch transaction's uncaught error (postgres.js would roll
 * the whole batch back for it), and the scope's own error is never looked
 * at. A job's savepoint is a plain `savepoint pq_job`, sent through the
 * scope just before the job's first statement (pipelined with it); it is
 * released once the handler returned, which also tells whether any of the
 * job's statements failed, or rolled back to when the handler threw.
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
   * error when it was watched.
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
        // A statement of the job failed and left the transaction aborted:
        // the job failed with it, though the handler went on.
        throw failure ? failure.error : error;
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
