/**
 * When a waiting `get()` takes again after its take lost the connection, and
 * how long it pauses first.
 *
 * A blocking `get()` outside a transaction runs its takes on the caller's
 * pool. When the server dies during one (a failover, a restart, a terminated
 * backend), the take fails with a connection error although the caller asked
 * to wait: in the failover test a getter rejected with "terminating connection
 * due to unexpected postmaster exit" once in 10 runs. The pool opens a new
 * connection for the next statement, so the getter pauses and takes again, as
 * long as its timeout and signal allow (tests/take_retry_test.ts). Retrying
 * loses nothing: the lost take either never ran, or committed before its
 * answer was lost, and then its job is gone for every getter alike.
 *
 * Inside the caller's transaction the error is theirs: the transaction is
 * gone with its connection, and a take on a new one would run outside it.
 *
 * @module
 */

import { isConnectionError } from "./safe_transaction.ts";

/** The first pause after a failed take; it doubles after each failure. */
const FIRST_PAUSE_MS = 100;
/** The longest pause between takes that fail in a row. */
const MAX_PAUSE_MS = 2_000;

/**
 * True when a waiting take that failed with `error` may take again: a
 * connection error outside a transaction. `CONNECTION_ENDED` is not retried:
 * the caller ended the client, and every later statement fails the same way.
 *
 * @param error What the take threw.
 * @param inTransaction True when the take ran in the caller's transaction.
 */
export function takeMayRetry(error: unknown, inTransaction: boolean): boolean {
  if (inTransaction || !isConnectionError(error)) return false;
  return (error as { code?: unknown }).code !== "CONNECTION_ENDED";
}

/**
 * The pause before taking again after `failures` takes failed in a row:
 * 100 ms, doubling up to 2 s, times a random 0.5 to 1.5, so that the getters
 * of many processes that lost the server together do not come back in step.
 *
 * @param failures Takes failed in a row, at least 1.
 */
export function takeRetryPauseMs(failures: number): number {
  const pause = Math.min(FIRST_PAUSE_MS * 2 ** (failures - 1), MAX_PAUSE_MS);
  return pause * (0.5 + Math.random());
}
