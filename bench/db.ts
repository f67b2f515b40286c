/**
 * The benchmark's connection, a fresh schema per run, and small waits.
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ, type PQ, type Sql } from "../mod.ts";
import { otelMode } from "./otel.ts";

/** The server to measure: `DATABASE_URL`, or the local test database. */
export function benchUrl(): string {
  return process.env.DATABASE_URL || "postgres://root@127.0.0.1:5432/test";
}

/** A postgres.js client with `max` connections and quiet notices. */
export function connect(url: string, max = 10): Sql {
  return postgres(url, { max, onnotice: () => {} });
}

/** A schema that lives for one run. */
export interface Scratch {
  /** Its name: `pq_bench_<8 hex digits>`. */
  readonly schema: string;
  /** Drops it with everything in it. */
  drop(): Promise<void>;
}

/** Creates a schema of its own for one run of one workload. */
export async function freshSchema(sql: Sql): Promise<Scratch> {
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(4)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const schema = `pq_bench_${hex}`;
  await sql`create schema ${sql(schema)}`;
  return {
    schema,
    async drop() {
      await sql.begin(async (tx) => {
        await tx`set local client_min_messages to warning`;
        await tx`drop schema if exists ${sql(schema)} cascade`;
      });
    },
  };
}

/**
 * A PQ on `sql` with its table created in `schema` (OpenTelemetry as
 * `PQ_BENCH_OTEL` says: see `otel.ts`).
 */
export async function openPQ(sql: Sql, schema: string): Promise<PQ> {
  const pq = createPQ(sql, { schema, telemetry: otelMode() !== "off" });
  await pq.create();
  return pq;
}

/** `pg_total_relation_size` of a table: heap, indexes and TOAST. */
export async function relationBytes(
  sql: Sql,
  schema: string,
  table: string,
): Promise<number> {
  const [row] = await sql`
    select pg_total_relation_size(format('%I.%I', ${schema}::text,
      ${table}::text)::regclass)::int8 as bytes`;
  return Number(row.bytes);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Waits until pq's listener has registered a waiter for `queue` (producers
 * notify only registered queues), then a moment for the wake-up it causes.
 */
export async function waitForWaiter(
  sql: Sql,
  schema: string,
  queue: string,
): Promise<void> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const rows = await sql`
      select 1 from ${sql(schema)}.pq_waiting
      where queue = ${queue} and expires_at > now()`;
    if (rows.length) break;
    if (performance.now() > deadline) {
      throw new Error(`No pq waiter registered for ${queue} within 10 s`);
    }
    await sleep(20);
  }
  await sleep(50);
}

/** Resident set size of this process, in bytes. */
export function rss(): number {
  return process.memoryUsage().rss;
}
