/**
 * Where pq reports what goes wrong away from any caller: a listener that
 * cannot connect, a poll or a vacuum that fails, a job parked because its
 * data cannot be decoded, a worker that fills its pool. A permission problem
 * would otherwise silently turn every blocking get into polling.
 *
 * The caller's `onError` gets each report. Without one, pq warns on the
 * console, at most once a minute for each distinct message, so a database
 * that is down for an hour does not flood the log.
 *
 * @module
 */

import { PQError, type PQErrorCode } from "./errors.ts";
import { storedError } from "./stored_error.ts";

/** Report the same message on the console at most this often. */
const CONSOLE_EVERY_MS = 60_000;

/** Reports background failures and warnings of one PQ. */
export type Report = (error: Error) => void;

/** Builds the reporter of a PQ from its `onError` option. */
export function createReport(onError?: (error: Error) => void): Report {
  if (onError) {
    return (error) => {
      try {
        onError(error);
      } catch (thrown) {
        console.error("pq: onError threw:", thrown);
      }
    };
  }
  const last = new Map<string, number>();
  return (error) => {
    const now = performance.now();
    const key = error.message;
    const at = last.get(key);
    if (at !== undefined && now - at < CONSOLE_EVERY_MS) return;
    if (last.size > 100) last.clear();
    last.set(key, now);
    console.warn(`pq: ${error.message}`, error.cause ?? "");
  };
}

/** A `BACKGROUND` error for a failure of `what`, caused by `cause`. */
export function backgroundError(
  what: string,
  cause: unknown,
  code: PQErrorCode = "BACKGROUND",
): PQError {
  const reason = storedError(cause).message;
  return new PQError(code, `${what} failed: ${reason}`, { cause });
}
