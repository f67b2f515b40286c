/**
 * Keeps postgres.js's reconnect backoff from growing while the client works.
 *
 * postgres.js 3.4.9 delays each reconnect of a pool's connections by
 * `backoff(retries)`, by default (0.5 to 1) x min(3^retries / 100, 20) s,
 * where `retries` is shared by the whole pool: it grows by one each time a
 * connection closes with an error, and goes back to 0 only when a new
 * connection finishes its startup and runs a first query that is not
 * reserved. Two kinds of connection never get there: those of `sql.begin()`
 * and `sql.reserve()` (reserved), and those whose type lookup (the query it
 * sends on each new connection) is killed. So under `pg_terminate_backend`
 * twice a second at 500 jobs/s (bench/pressure.ts --mode=backend_kill), a
 * worker's pool reached 17 retries and a producer's 8: every reconnect then
 * waited 10 to 20 s, and the process put or completed nothing for that long
 * while the server was up (bench/RESULTS.md, pressure). The upstream fix is
 * open (porsager/postgres#1214: reserved connections reset the counter;
 * #1193).
 *
 * pq applies the driver's own rule where the driver misses it: once one of
 * pq's statements succeeded on a client, the server is reachable, so the
 * count starts again. While the server is down nothing succeeds and the
 * backoff grows as designed. A client without that field (another driver
 * version, a transaction's handle) is left alone.
 *
 * @module
 */

/** The part of postgres.js's client this module touches. */
interface Shared {
  options?: { shared?: { retries?: unknown } };
}

/** Resets the reconnect backoff of `client` after a statement succeeded. */
export function noteReachable(client: unknown): void {
  const shared = (client as Shared | null)?.options?.shared;
  if (shared && typeof shared.retries === "number" && shared.retries > 0) {
    shared.retries = 0;
  }
}
