/**
 * A queue's or task's link to the caller's transaction (`with(tx)`,
 * `transaction()`), so that a use after the transaction ended is an error
 * instead of a statement that silently runs outside it.
 *
 * After `sql.begin()` returns, postgres.js still accepts statements on its
 * `tx`, and runs them on the connection it used: on their own (a put then
 * commits by itself, a get takes the job for good), or inside whichever
 * transaction the connection serves next (tests/stopping_test.ts). Nothing
 * on the `tx` object tells that it ended, so the server does: when a
 * transaction is first bound, pq marks it with a transaction-local setting
 * (`set_config('pq.bound', ..., true)`), sent right away and so ahead of
 * every later statement on that connection, at no extra round trip. The
 * setting ends with the transaction (or with a savepoint that rolls back).
 * Hot statements (put, putMany, get) check the mark in their WHERE clause
 * (`boundTransactionCheck` in `sql/take_jobs.ts`); the others run
 * {@linkcode Binding.check} first.
 *
 * @module
 */

import { PQError } from "./errors.ts";
import type { BoundCheck } from "./sql/insert_jobs.ts";
import { boundTransactionCheck } from "./sql/take_jobs.ts";
import type { TransactionSql } from "./types.ts";

/** The mark of each transaction object that was bound. */
const marks = new WeakMap<TransactionSql, string>();

/** The caller's transaction a queue is bound to. */
export class Binding implements BoundCheck {
  /** The transaction. */
  readonly tx: TransactionSql;
  /** What the transaction's setting holds, the statements' parameter. */
  readonly mark: string;
  #ended = false;

  /** @param tx The transaction from `sql.begin()` or `tx.savepoint()`. */
  constructor(tx: TransactionSql) {
    this.tx = tx;
    let mark = marks.get(tx);
    if (mark === undefined) {
      mark = `,${crypto.randomUUID()},`;
      marks.set(tx, mark);
      // Added to the marks already there: savepoints bound inside the
      // transaction keep the outer binding's mark.
      const probe = tx.unsafe(
        `select set_config('pq.bound',
          coalesce(current_setting('pq.bound', true), '') || $1, true)`,
        [mark],
      );
      probe.execute();
      // A failure here (the transaction aborted) fails the next statement.
      probe.catch(() => {});
    }
    this.mark = mark;
  }

  /** Marks the transaction (or savepoint) ended: `transaction()` knows. */
  end(): void {
    this.#ended = true;
  }

  /** Throws `TRANSACTION_ENDED` if known to have ended. */
  assertOpen(action: string): void {
    if (this.#ended) throw ended(action);
  }

  /**
   * Records what a bound statement found: throws `TRANSACTION_ENDED` when
   * it ran outside the transaction (and so did nothing).
   */
  confirm(inTransaction: boolean, action: string): void {
    if (!inTransaction) {
      this.#ended = true;
      throw ended(action);
    }
  }

  /**
   * Checks with one statement that the transaction is still the one bound,
   * before a statement that carries no check of its own.
   */
  async check(action: string): Promise<void> {
    this.assertOpen(action);
    const [row] = await this.tx.unsafe(
      `select ${boundTransactionCheck(1)}`,
      [this.mark],
    ).values();
    this.confirm(row[0] === true, action);
  }
}

function ended(action: string): PQError {
  return new PQError(
    "TRANSACTION_ENDED",
    `Cannot ${action}: the transaction this queue is bound to has ended (bind a queue with with(tx) or transaction() for each transaction)`,
  );
}
