/**
 * A PQ in a schema of its own, for one test file.
 *
 * @module
 */

import postgres from "postgres";
import { createPQ, type PQ, type PQOptions } from "../mod.ts";
import { databaseUrl, type TestSchema, testSchema } from "./_db.ts";

/** What a test file works with. */
export interface TestPQ {
  /** The client (pool of `max` connections). */
  sql: postgres.Sql;
  /** A PQ on a table in the file's own schema, created. */
  pq: PQ;
  /** The schema, dropped by `close()`. */
  scratch: TestSchema;
  /** Closes the PQ, drops the schema and ends the client. */
  close(): Promise<void>;
}

/**
 * Opens a client, a schema named after the test file and a PQ with its table
 * created there.
 */
export async function openTestPQ(
  name: string,
  options: PQOptions & { max?: number } = {},
): Promise<TestPQ> {
  const { max = 10, ...pqOptions } = options;
  const sql = postgres(databaseUrl(), { max, onnotice: () => {} });
  const scratch = await testSchema(sql, name);
  const pq = createPQ(sql, { schema: scratch.schema, ...pqOptions });
  await pq.create();
  return {
    sql,
    pq,
    scratch,
    async close() {
      await pq.close();
      await scratch.drop();
      // A timeout, because postgres.js 3.4.9's end() waits forever for a
      // connection that closed during a query (fault tests make those).
      await sql.end({ timeout: 1 });
    },
  };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Milliseconds since `start` (a `performance.now()` reading). */
export function since(start: number): number {
  return performance.now() - start;
}
