/**
 * Shared helpers for the test files that talk to PostgreSQL.
 *
 * They run unchanged on Deno, Node and Bun: `node:process` is the one place
 * that reads the environment. The server comes from `DATABASE_URL`, which
 * `tests/run.ts` (what `deno task test` runs) sets, starting a throwaway
 * PostgreSQL when it is not set already.
 *
 * @example Give a test file its own schema
 * ```ts ignore
 * import postgres from "postgres";
 * import { databaseUrl, testSchema } from "./_db.ts";
 *
 * const sql = postgres(databaseUrl());
 * await using scratch = await testSchema(sql, "queue");
 * await sql`create table ${sql(scratch.schema)}.t (id int)`;
 * // ... on leaving the block the schema is dropped, then:
 * await sql.end();
 * ```
 *
 * @module
 */
import process from "node:process";
import type postgres from "postgres";

/**
 * The PostgreSQL server the tests run against.
 *
 * @returns The value of the `DATABASE_URL` environment variable.
 * @throws {Error} When `DATABASE_URL` is not set or empty.
 */
export function databaseUrl(): string {
  const url = process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      "Cannot connect to PostgreSQL: DATABASE_URL is not set. Run the tests " +
        "through `deno task test`, which starts a throwaway PostgreSQL when " +
        "DATABASE_URL is not set.",
    );
  }
  return url;
}

/** A schema that exists for one test file; see {@linkcode testSchema}. */
export interface TestSchema {
  /** The schema's name: `pq_test_<name>_<8 hex digits>`. */
  readonly schema: string;
  /** Drops the schema and everything in it. Safe to call more than once. */
  drop(): Promise<void>;
  /** Same as {@linkcode TestSchema.drop}, so `await using` works. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Creates a schema named `pq_test_<name>_<random>` so that test files can
 * run in parallel against one server without seeing each other's tables.
 *
 * @param sql The client to create (and later drop) the schema with.
 * @param name A short lowercase tag, usually the test file's name: letters,
 *   digits and `_`, starting with a letter, at most 40 characters.
 * @returns The schema's name and a `drop()` that removes it with cascade.
 * @throws {TypeError} When `name` is not such a tag.
 */
export async function testSchema<T extends Record<string, unknown>>(
  sql: postgres.Sql<T>,
  name: string,
): Promise<TestSchema> {
  if (!/^[a-z][a-z0-9_]{0,39}$/.test(name)) {
    throw new TypeError(
      "Cannot create a test schema: 'name' must be 1 to 40 lowercase " +
        `letters, digits or '_', starting with a letter: received ${
          JSON.stringify(name)
        }`,
    );
  }
  const random = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
  const schema = `pq_test_${name}_${random}`;
  await sql`create schema ${sql(schema)}`;
  const drop = async (): Promise<void> => {
    // Quietly: a cascade would otherwise print one NOTICE per dropped object.
    await sql.begin(async (tx) => {
      await tx`set local client_min_messages to warning`;
      await tx`drop schema if exists ${sql(schema)} cascade`;
    });
  };
  return { schema, drop, [Symbol.asyncDispose]: drop };
}
