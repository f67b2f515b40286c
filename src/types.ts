/**
 * The driver types pq works with. `postgres` (porsager) is a peer dependency:
 * pq takes the caller's client and uses only its types at compile time.
 *
 * @module
 */

import type postgres from "postgres";

/**
 * A `postgres` client, as returned by `postgres(url)`.
 */
// deno-lint-ignore no-explicit-any
export type Sql = postgres.Sql<any>;

/**
 * A transaction of a `postgres` client: the `tx` that `sql.begin()` passes
 * to its callback.
 */
// deno-lint-ignore no-explicit-any
export type TransactionSql = postgres.TransactionSql<any>;

/** Anything pq can run a statement on: a client or a transaction. */
export type Executor = Sql | TransactionSql;
