/**
 * `sql.begin()` for the worker, safe when the connection dies mid-way.
 *
 * In postgres.js 3.4.9, when a transaction's connection closes (the server
 * process was terminated, the network dropped), `sql.begin()` rejects at once,
 * but its callback goes on; when the callback then settles, postgres.js sends
 * `ROLLBACK` (or `ROLLBACK TO SAVEPOINT`) on the dead connection. That write
 * throws from a `setImmediate` callback, which crashes Node and Bun
 * (porsager/postgres#1154, #1208; fixes open as #1209 and #1215), or runs
 * on a fresh connection outside any transaction.
 *
 * The server has already rolled the transaction back, so nothing needs to be
 * sent. This module makes sure nothing is: once the connection is known dead,
 * pq's statements and `job.tx` refuse to run, and the callbacks given to
 * `begin()` and `savepoint()` never settle, so postgres.js never reaches its
 * rollback. (Their pending promises hold no timer or socket and are
 * collected.)
 *
 * A transaction that never begins is given up too (`BeginOptions`): the
 * driver can leave a new connection's first statement unsettled for good
 * (see `connect_deadline.ts`), which held a worker slot, and a graceful stop
 * with it, forever. Giving up before the callback ran is safe: nothing was
 * taken yet, and if the BEGIN is answered after all, the callback throws at
 * once, so postgres.js rolls back and frees the connection.
 *
 * @module
 */

import { delay } from "./delay.ts";
import { PQError } from "./errors.ts";
import type { Sql, TransactionSql } from "./types.ts";

/** A transaction and whether its connection is known to be dead. */
export interface SafeTransaction {
  /** The transaction from `sql.begin()`. */
  readonly tx: TransactionSql;
  /** True once the connection closed. */
  readonly dead: boolean;
  /**
   * Awaits `work` (a statement, a savepoint, a handler). If it fails because
   * the connection died, never settles; other failures are re-thrown.
   */
  run<T>(work: Promise<T>): Promise<T>;
}

const SQLSTATE_CONNECTION_LOST = /^(08|57P0)/;
const DRIVER_CONNECTION_LOST = new Set([
  "CONNECTION_LOST", // pq's own, from job.tx (job_transaction.ts)
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
]);

/**
 * True for errors that mean the connection is gone: the driver's own
 * (`CONNECTION_CLOSED`, ...) and the server's connection exceptions (SQLSTATE
 * class 08, and 57P01-57P03: terminated, crashed, starting up).
 */
export function isConnectionError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" &&
    (DRIVER_CONNECTION_LOST.has(code) || SQLSTATE_CONNECTION_LOST.test(code));
}

/** A promise that never settles. */
function never(): Promise<never> {
  return new Promise<never>(() => {});
}

/**
 * How long a connection error may take to close the transaction's own
 * connection before pq takes it for an error of another connection (a
 * handler that queries another client), which is then the handler's failure.
 */
const CLOSE_WAIT_MS = 1_000;

/** When `beginSafely()` gives up on a transaction that has not begun. */
export interface BeginOptions {
  /**
   * Milliseconds for the transaction to begin (a pool connection, opened if
   * need be, and the BEGIN): then it rejects with `CONNECTION_LOST`.
   */
  beginWithinMs: number;
  /** Aborts the wait for the BEGIN (a stop); rejects with its reason. */
  signal?: AbortSignal;
}

/**
 * Runs `fn` in `sql.begin()`. Resolves with its result once committed;
 * rejects with `fn`'s error (after the rollback), or with the driver's
 * connection error when the connection dies. With `options`, also rejects
 * when the transaction has not begun within `beginWithinMs` or `signal`
 * aborts before it began; `fn` then never runs.
 */
export async function beginSafely<R>(
  sql: Sql,
  fn: (transaction: SafeTransaction) => Promise<R>,
  options?: BeginOptions,
): Promise<R> {
  options?.signal?.throwIfAborted();
  /** Ends the wait for the BEGIN: it was answered, or given up. */
  const beginning = new AbortController();
  let abandoned = false;
  let dead = false;
  const closed = new AbortController();
  const markDead = () => {
    dead = true;
    closed.abort();
  };
  /** Connection errors already found to be another connection's. */
  const foreign = new WeakSet<object>();
  const begun = sql.begin((tx) => {
    if (abandoned) {
      throw new Error("pq gave up on this transaction before it began");
    }
    beginning.abort();
    const transaction: SafeTransaction = {
      tx,
      get dead() {
        return dead;
      },
      async run<T>(work: Promise<T>): Promise<T> {
        if (dead) return never();
        let result: T;
        try {
          result = await work;
        } catch (error) {
          if (dead) return never();
          // The close is reported a moment after the failure it caused; a
          // connection error may also come from another connection that a
          // handler used, and must not stop this transaction for good.
          const known = typeof error === "object" && error !== null &&
            foreign.has(error);
          const connection = isConnectionError(error) && !known;
          await delay(connection ? CLOSE_WAIT_MS : 0, closed.signal);
          if (dead) return never();
          if (connection) foreign.add(error as object);
          throw error;
        }
        // The connection may have closed while `work` ran without using it
        // (a handler awaiting a timer): then the caller's next statement, or
        // postgres.js's COMMIT, would be written on the dead connection.
        if (dead) return never();
        return result;
      },
    };
    return fn(transaction);
  });
  begun.then(undefined, markDead);
  if (!options) return await begun as R;
  const gaveUp = giveUpUnlessBegun(options, beginning.signal, () => {
    abandoned = true;
  });
  try {
    return await Promise.race([begun, gaveUp]) as R;
  } finally {
    beginning.abort();
  }
}

/**
 * Rejects when `beginWithinMs` pass or `options.signal` aborts before
 * `began` aborts (the callback ran, or the race is over), calling `abandon`
 * first. Never settles otherwise.
 */
async function giveUpUnlessBegun(
  options: BeginOptions,
  began: AbortSignal,
  abandon: () => void,
): Promise<never> {
  const { beginWithinMs, signal } = options;
  const wait = new AbortController();
  const end = () => wait.abort();
  signal?.addEventListener("abort", end, { once: true });
  began.addEventListener("abort", end, { once: true });
  try {
    const elapsed = await delay(beginWithinMs, wait.signal);
    if (began.aborted) return never();
    abandon();
    if (!elapsed) throw signal?.reason;
    throw new PQError(
      "CONNECTION_LOST",
      `The worker's transaction did not begin within ${beginWithinMs} ms (the client's connect_timeout + 5 s): its connection is taken for lost, and the slot tries again`,
    );
  } finally {
    signal?.removeEventListener("abort", end);
    began.removeEventListener("abort", end);
  }
}
