/**
 * How long pq lets the driver take to open a connection and run its first
 * statement before it gives that attempt up.
 *
 * postgres.js 3.4.9 can leave a statement on a new connection unsettled for
 * good: with several hosts in the URL, it swallows every error of a
 * connection that fails while it is established and tries again without
 * end, also past `connect_timeout` (porsager/postgres#1174); a connection
 * closed during its startup without an error (a proxy or load balancer in
 * front of a server that is down) is opened again without end with one host
 * too; and a server that froze, or a network that drops packets without a
 * reset, never answers a statement at all. The listener and the worker's
 * transactions therefore give an attempt the driver's own `connect_timeout`
 * plus a few seconds for the statements, then start a new one.
 *
 * @module
 */

import type { Sql } from "./types.ts";

/** postgres.js's `connect_timeout` when the client sets none, in seconds. */
const DRIVER_CONNECT_TIMEOUT_S = 30;
/** The time allowed for the first statements once connected. */
const FIRST_STATEMENTS_MS = 5_000;

/**
 * Milliseconds a connect attempt of `sql`'s options may take, with its first
 * statements: the client's `connect_timeout` (30 s unless set) plus 5 s.
 *
 * @param sql The caller's client.
 */
export function connectDeadlineMs(sql: Sql): number {
  const seconds = Number(sql.options.connect_timeout) ||
    DRIVER_CONNECT_TIMEOUT_S;
  return seconds * 1000 + FIRST_STATEMENTS_MS;
}
