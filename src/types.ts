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
 *
 * @example The client pq takes
 * ```ts
 * import postgres from "postgres";
 * import type { Sql } from "@pq/pq";
 *
 * const sql: Sql = postgres("postgres://localhost/app", { max: 10 });
 * await sql.end();
 * ```
 */
// deno-lint-ignore no-explicit-any
export type Sql = PostgresSql<any>;

/**
 * A transaction of a `postgres` client: the `tx` that `sql.begin()` passes
 * to its callback.
 *
 * @example Code that runs in a caller's transaction
 * ```ts
 * import type { TransactionSql } from "@pq/pq";
 *
 * async function audit(tx: TransactionSql, what: string): Promise<void> {
 *   await tx`select ${what}`;
 * }
 * ```
 */
// deno-lint-ignore no-explicit-any
export type TransactionSql = PostgresTransactionSql<any>;

/** Anything pq can run a statement on: a client or a transaction. */
export type Executor = Sql | TransactionSql;
