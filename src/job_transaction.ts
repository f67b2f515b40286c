/**
 * The `job.tx` a handler gets: the job's savepoint transaction, usable only
 * while the job runs.
 *
 * After a job ends (or its worker gives up on it), its transaction belongs to
 * the next job of the batch, or its connection to the pool; a handler that
 * kept running past that point must not write there. The guard turns such a
 * late use into an error instead, as it does a use after the connection
 * closed. It also tells the job's savepoint of each use, so that the
 * savepoint is sent only before a job's first statement (`savepoints.ts`).
 *
 * @module
 */

import { PQError } from "./errors.ts";
import type { TransactionSql } from "./types.ts";

/** A transaction handle that can be closed. */
export interface GuardedTransaction {
  /** What the handler gets as `job.tx`. */
  readonly tx: TransactionSql;
  /** Makes every later use of `tx` throw. */
  close(): void;
}

/** What the guard tells of each use of `job.tx` (see `savepoints.ts`). */
export interface TransactionUse {
  /** Called before each use, once it passed the checks. */
  open(): void;
  /** Called with what a statement-making call returned. */
  watch<T>(result: T): T;
}

/** Methods of `tx` that return a statement. */
const STATEMENTS = new Set<PropertyKey>(["unsafe", "file"]);

/**
 * Wraps `tx` so that it throws once {@linkcode GuardedTransaction.close}d,
 * and tells `use` of every use before it happens.
 */
export function guardTransaction(
  tx: TransactionSql,
  describeJob: string,
  isDead: () => boolean,
  use?: TransactionUse,
): GuardedTransaction {
  let open = true;
  const check = () => {
    if (!open) {
      throw new PQError(
        "TRANSACTION_ENDED",
        `The transaction of ${describeJob} has ended: a handler can use job.tx only until it returns`,
      );
    }
    if (isDead()) {
      // Writing on a closed connection crashes postgres.js 3.4.9; see
      // safe_transaction.ts. The server rolled the transaction back.
      throw new PQError(
        "CONNECTION_LOST",
        `The connection of ${describeJob}'s transaction closed`,
      );
    }
    use?.open();
  };
  const watch = <T>(result: T): T => use ? use.watch(result) : result;
  const methods = new Map<PropertyKey, unknown>();
  const guarded = new Proxy(tx, {
    apply(target, thisArg, args) {
      check();
      // A tagged template is a statement; other calls make helpers.
      const result = Reflect.apply(target, thisArg, args);
      return Array.isArray(args[0]) && "raw" in args[0]
        ? watch(result)
        : result;
    },
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      let method = methods.get(property);
      if (!method) {
        const statement = STATEMENTS.has(property);
        method = (...args: unknown[]) => {
          check();
          const result = Reflect.apply(value, target, args);
          return statement ? watch(result) : result;
        };
        methods.set(property, method);
      }
      return method;
    },
  });
  return {
    tx: guarded,
    close() {
      open = false;
    },
  };
}
