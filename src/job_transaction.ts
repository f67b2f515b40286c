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

/** What a postgres.js query holds of how it is sent (3.4.9). */
interface SendableQuery {
  /** Called once when the query is sent (awaited or executed). */
  handler: ((query: unknown) => unknown) & { debug?: unknown };
  /** Settles the query as failed. */
  reject: (error: unknown) => void;
}

/**
 * Wraps `tx` so that it throws once {@linkcode GuardedTransaction.close}d,
 * and tells `use` of every use before it happens.
 *
 * A statement is checked twice: when it is made, and when it is sent. A
 * query made while the handler ran but awaited only after it returned
 * would otherwise reach the connection after the job's savepoint was
 * released: its write would commit with the batch even if the job failed,
 * and after the batch it would run on a pooled connection outside any
 * transaction. Sent late, it rejects with the same error as a late use.
 * The statements of a nested `savepoint()` are guarded the same way; the
 * driver's own `rollback to` for one whose callback failed late is not
 * (the batch then rolls back, and its jobs run again).
 */
export function guardTransaction(
  tx: TransactionSql,
  describeJob: string,
  isDead: () => boolean,
  use?: TransactionUse,
): GuardedTransaction {
  let open = true;
  /** Why `tx` may not be used now, or null. */
  const refusal = (): PQError | null => {
    if (!open) {
      return new PQError(
        "TRANSACTION_ENDED",
        `The transaction of ${describeJob} has ended: a handler can use job.tx only until it returns`,
      );
    }
    if (isDead()) {
      // Writing on a closed connection crashes postgres.js 3.4.9; see
      // safe_transaction.ts. The server rolled the transaction back.
      return new PQError(
        "CONNECTION_LOST",
        `The connection of ${describeJob}'s transaction closed`,
      );
    }
    return null;
  };
  return {
    tx: guard(tx, refusal, use),
    close() {
      open = false;
    },
  };
}

/** The guarded proxy of `tx` (or of a nested savepoint's transaction). */
function guard(
  tx: TransactionSql,
  refusal: () => PQError | null,
  use: TransactionUse | undefined,
): TransactionSql {
  const check = () => {
    const error = refusal();
    if (error) throw error;
    use?.open();
  };
  const statement = <T>(result: T): T =>
    fence(use ? use.watch(result) : result, refusal);
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(tx, {
    apply(target, thisArg, args) {
      check();
      // A tagged template is a statement; other calls make helpers.
      const result = Reflect.apply(target, thisArg, args);
      return Array.isArray(args[0]) && "raw" in args[0]
        ? statement(result)
        : result;
    },
    get(target, property) {
      const value = Reflect.get(target, property);
      if (typeof value !== "function") return value;
      let method = methods.get(property);
      if (!method) {
        const makes = STATEMENTS.has(property);
        const nests = property === "savepoint";
        method = (...args: unknown[]) => {
          check();
          if (nests) return nested(value, target, args, refusal);
          const result = Reflect.apply(value, target, args);
          return makes ? statement(result) : result;
        };
        methods.set(property, method);
      }
      return method;
    },
  });
}

/** A promise that never settles. */
const NEVER = new Promise<never>(() => {});

/**
 * Runs `savepoint` (a nested savepoint of `target`) with its callback's
 * transaction guarded too.
 *
 * postgres.js sends nothing when the callback succeeds, and `rollback to`
 * when it fails. A callback that fails after the job ended (the handler
 * did not await the savepoint) must not let that statement out: the job's
 * release already ended the savepoint, and the connection may be running
 * the next job, or someone else's transaction. So the driver is left
 * waiting for good, and the caller gets the callback's error instead.
 */
function nested(
  savepoint: (...args: unknown[]) => unknown,
  target: TransactionSql,
  args: unknown[],
  refusal: () => PQError | null,
): unknown {
  const at = args.findIndex((arg) => typeof arg === "function");
  // The tagged-template form (`savepoint\`...\``) has no callback.
  if (at < 0) return Reflect.apply(savepoint, target, args);
  const body = args[at] as (sp: TransactionSql) => unknown;
  let failedLate!: (error: unknown) => void;
  const late = new Promise<never>((_, reject) => (failedLate = reject));
  args[at] = async (sp: TransactionSql) => {
    try {
      return await body(guard(sp, refusal, undefined));
    } catch (error) {
      if (!refusal()) throw error;
      failedLate(error);
      return await NEVER;
    }
  };
  return Promise.race([
    Reflect.apply(savepoint, target, args) as Promise<unknown>,
    late,
  ]);
}

/**
 * Checks `result`, if it is a query, again when it is sent: a refused one
 * rejects with the refusal, and never reaches the connection.
 */
function fence<T>(result: T, refusal: () => PQError | null): T {
  const query = result as Partial<SendableQuery> | null;
  if (
    typeof query?.handler !== "function" || typeof query.reject !== "function"
  ) return result;
  const send = query.handler;
  const reject = query.reject;
  query.handler = Object.assign((sent: unknown) => {
    const error = refusal();
    if (!error) return send(sent);
    reject(error);
  }, { debug: send.debug });
  return result;
}
