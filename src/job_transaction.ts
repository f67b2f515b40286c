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
 * The statements of a nested `savepoint()`'s callback are guarded the same
 * way, and a callback that ends after the job did sends nothing more (see
 * `nested`). Not guarded at send time: the text of a `file()` read after
 * the job ended, and the tagged-template form of `savepoint`.
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

/**
 * Runs `savepoint` (a nested savepoint of `target`) with its callback's
 * transaction guarded too.
 *
 * postgres.js sends nothing when the callback succeeds, and `rollback to`
 * when it fails (or succeeds after one of its statements failed). A
 * callback that ends after the job did (the handler did not await the
 * savepoint) must not let that statement out: the job's release already
 * ended the savepoint, and the connection may be running the next job, or
 * someone else's transaction. So the driver is then left waiting for good
 * (a promise of its own, collected with it), and the caller's promise
 * settles as the callback did.
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
  let settleLate!: (outcome: Promise<unknown>) => void;
  const late = new Promise<unknown>((resolve) => (settleLate = resolve));
  args[at] = async (sp: TransactionSql) => {
    let outcome: Promise<unknown>;
    try {
      const made = body(guard(sp, refusal, undefined));
      // An array of queries is sent side by side, as postgres.js does.
      outcome = Promise.resolve(
        await (Array.isArray(made) ? Promise.all(made) : made),
      );
    } catch (error) {
      outcome = Promise.reject(error);
    }
    if (!refusal()) return await outcome;
    outcome.catch(() => {}); // the caller gets it through `late`
    settleLate(outcome);
    return await new Promise<never>(() => {});
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
  query.handler = Object.assign((sent: unknown) => {
    const error = refusal();
    if (!error) return send(sent);
    // Handled, as the driver's own handler would have made it: a refused
    // `.execute()` that nobody awaits must not end the process. The
    // query's `reject` is read now: a cursor swaps in its own.
    Promise.prototype.then.call(query, undefined, () => {});
    (query as SendableQuery).reject(error);
  }, { debug: send.debug });
  return result;
}
