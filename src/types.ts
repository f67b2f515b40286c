/**
 * The driver types pq works with. `postgres` (porsager) is a peer dependency:
 * pq takes the caller's client.
 *
 * @module
 */

import type {
  Sql as PostgresSql,
  TransactionSql as PostgresTransactionSql,
} from "postgres";

/**
 * A `postgres` client, as returned by `postgres(url)`.
 */
// deno-lint-ignore no-explicit-any
export type Sql = PostgresSql<any>;

/**
 * A transaction of a `postgres` client: the `tx` that `sql.begin()` passes
 * to its callback.
 */
// deno-lint-ignore no-explicit-any
export type TransactionSql = PostgresTransactionSql<any>;

/** Anything pq can run a statement on: a client or a transaction. */
export type Executor = Sql | TransactionSql;
