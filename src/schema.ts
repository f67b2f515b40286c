/**
 * The names of a pq table's objects, and `create()`: the numbered
 * migrations that create and upgrade them (the steps are in `migrations/`).
 *
 * One table holds the jobs of every queue. A job is `ready` (can be taken
 * now), `scheduled` (waits for `schedule_at`), `running` (claimed by a lease
 * worker; a job run in a worker's transaction stays `ready`, locked, until
 * that commits), `completed` (kept only with `keep.completed`), `failed` (a
 * task that used up its attempts, or data that cannot be read), `cancelled`,
 * or `done` (a taken job whose data was rewritten by `job.update()`, kept as
 * a record). Taking a job in a transaction deletes its row: a queue table
 * then holds only live work, and dead rows are reclaimed by vacuum instead of
 * piling up as "dequeued" rows (see bench/RESULTS.md for the churn figures).
 *
 * Per schema, pq also keeps shared objects: `pq_waiting` (which queues have
 * a getter waiting, so puts notify only when someone listens), `pq_wait`
 * (registers waits) and `pq_notify` (the insert trigger's function).
 *
 * Versions: the table's version is in its comment (`pq schema 2`); the
 * shared objects' version is in a comment inside each function's body
 * (`-- pq shared version 2`), so that an older pq that replaces a body also
 * replaces the marker. Every step is additive: the statements of the
 * previous release keep working on an upgraded table, so processes of both
 * can run during a rolling deploy (tests/migrations_test.ts).
 *
 * @module
 */

import { PQError } from "./errors.ts";
import { sharedV1 } from "./migrations/shared_v1.ts";
import { sharedV2 } from "./migrations/shared_v2.ts";
import { sharedV3 } from "./migrations/shared_v3.ts";
import { sharedV4 } from "./migrations/shared_v4.ts";
import { sharedV5 } from "./migrations/shared_v5.ts";
import { sharedV6 } from "./migrations/shared_v6.ts";
import { tableV1 } from "./migrations/table_v1.ts";
import { tableV2 } from "./migrations/table_v2.ts";
import { tableV3 } from "./migrations/table_v3.ts";
import { tableV4 } from "./migrations/table_v4.ts";
import { tableV5 } from "./migrations/table_v5.ts";
import { tableV6 } from "./migrations/table_v6.ts";
import { tableV7 } from "./migrations/table_v7.ts";
import { quoteIdent, quoteLiteral } from "./names.ts";
import type { Executor, Sql } from "./types.ts";

/** Unquoted stable names of a table's own objects. */
export interface TableObjects {
  primaryKey: string;
  readyPlainIndex: string;
  readyTaskIndex: string;
  scheduledIndex: string;
  finishedIndex: string;
  runningIndex: string;
  finishedAtIndex: string;
  groupIndex: string;
  stateCheck: string;
}

/** Quoted names of the objects of one pq table. */
export interface TableNames {
  /** The schema name, unquoted; undefined: the search path decides. */
  schema: string | undefined;
  /** The table name, unquoted. */
  table: string;
  /** `"schema"."table"`, or `"table"` without a schema. */
  qualified: string;
  /** The schema's `pq_waiting` table. */
  waiting: string;
  /** The schema's `pq_wait` function: registers listeners. */
  waitFunction: string;
  /** The schema's `pq_notify` function: the insert trigger's. */
  notifyFunction: string;
  /** The schema's `pq_signals` table: cancel requests and watches. */
  signals: string;
  /** The schema's `pq_meta` table: maintenance duties. */
  meta: string;
  /** The schema's `pq_keys` table: the jobs that hold unique keys. */
  keys: string;
  /** The schema's `pq_schedules` table: cron schedules. */
  schedules: string;
  /** The schema's `pq_paused` table: paused queues. */
  paused: string;
  /** The schema's `pq_rates` table: one row per rate-limited task. */
  rates: string;
  /** The schema's `pq_rate_log` table: starts of rate-limited tasks. */
  rateLog: string;
  /** The schema's `pq_rate_reserve` function (`migrations/shared_v5.ts`). */
  rateReserveFunction: string;
  /** The schema's `pq_counts` table: jobs finished per minute. */
  counts: string;
  /** The table's `put_keyed` function (see `migrations/table_v4.ts`). */
  putKeyedFunction: string;
  /** The table's `take_limited` function (see `migrations/table_v5.ts`). */
  takeLimitedFunction: string;
  /** The table as an SQL literal cast to its oid, for side-table keys. */
  relid: string;
  /** The table's indexes and constraints, by their stable names. */
  objects: TableObjects;
}

/** The steps of the job table; step n brings version n - 1 to n. */
const TABLE_STEPS = [
  tableV1,
  tableV2,
  tableV3,
  tableV4,
  tableV5,
  tableV6,
  tableV7,
];
/** The steps of the schema's shared objects. */
const SHARED_STEPS = [
  sharedV1,
  sharedV2,
  sharedV3,
  sharedV4,
  sharedV5,
  sharedV6,
];

/** The version of the table this pq creates. */
export const TABLE_VERSION: number = TABLE_STEPS.length;
/** The version of the shared objects this pq creates. */
export const SHARED_VERSION: number = SHARED_STEPS.length;

/**
 * Builds the quoted names of a table's objects. Without a schema they stay
 * unqualified, so the search path finds them, as PostgreSQL users expect.
 */
export function tableNames(
  schema: string | undefined,
  table: string,
): TableNames {
  const prefix = schema === undefined ? "" : `${quoteIdent(schema)}.`;
  const name = (suffix: string) => objectName(table, suffix);
  return {
    schema,
    table,
    qualified: `${prefix}${quoteIdent(table)}`,
    waiting: `${prefix}pq_waiting`,
    waitFunction: `${prefix}pq_wait`,
    notifyFunction: `${prefix}pq_notify`,
    signals: `${prefix}pq_signals`,
    meta: `${prefix}pq_meta`,
    keys: `${prefix}pq_keys`,
    schedules: `${prefix}pq_schedules`,
    paused: `${prefix}pq_paused`,
    rates: `${prefix}pq_rates`,
    rateLog: `${prefix}pq_rate_log`,
    rateReserveFunction: `${prefix}pq_rate_reserve`,
    counts: `${prefix}pq_counts`,
    putKeyedFunction: `${prefix}${quoteIdent(objectName(table, "put_keyed"))}`,
    takeLimitedFunction: `${prefix}${
      quoteIdent(objectName(table, "take_limited"))
    }`,
    relid: `${quoteLiteral(`${prefix}${quoteIdent(table)}`)}::regclass::oid`,
    objects: {
      primaryKey: name("pkey"),
      readyPlainIndex: name("ready_plain_idx"),
      readyTaskIndex: name("ready_task_idx"),
      scheduledIndex: name("scheduled_idx"),
      finishedIndex: name("finished_idx"),
      runningIndex: name("running_idx"),
      finishedAtIndex: name("finished_at_idx"),
      groupIndex: name("group_idx"),
      stateCheck: name("state_check"),
    },
  };
}

const encoder = new TextEncoder();

/**
 * `<table>_<suffix>`, or, when that is longer than the 63 bytes PostgreSQL
 * keeps, the table's name cut short with a hash of the whole name, so that
 * two long table names never share an index name.
 */
export function objectName(table: string, suffix: string): string {
  const full = `${table}_${suffix}`;
  if (encoder.encode(full).length <= 63) return full;
  let hash = 0x811c9dc5; // FNV-1a
  for (const byte of encoder.encode(table)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  const tag = `_${hash.toString(16).padStart(8, "0")}_${suffix}`;
  let cut = table;
  while (encoder.encode(cut + tag).length > 63) {
    cut = [...cut].slice(0, -1).join("");
  }
  return cut + tag;
}

/**
 * Creates or upgrades the table, its indexes and trigger, and the schema's
 * shared objects. Idempotent, and safe when several processes call it at
 * once: the whole upgrade runs in one transaction under a transaction-level
 * advisory lock (pooler-safe, unlike a session lock).
 *
 * @throws {PQError} `SCHEMA_TOO_NEW` if the table was made by a newer pq.
 */
export async function createSchema(sql: Sql, n: TableNames): Promise<void> {
  if (n.schema === undefined) {
    throw new Error("createSchema needs a resolved schema name");
  }
  const schema = n.schema;
  await sql.begin(async (tx) => {
    // "already exists, skipping" notices would print on every start.
    await tx.unsafe(`set local client_min_messages to warning`);
    await tx.unsafe(
      `select pg_advisory_xact_lock(hashtext(${quoteLiteral(`pq:${schema}`)}))`,
    );
    const [found] = await tx.unsafe(
      `select exists (select 1 from pg_namespace where nspname = $1) as found`,
      [schema],
    );
    if (!found.found) {
      await tx.unsafe(`create schema if not exists ${quoteIdent(schema)}`);
    }
    // Newer shared objects are left as they are: their functions keep
    // their signatures, so this pq's table and statements work with them.
    const shared = await sharedVersion(tx, schema);
    for (const step of SHARED_STEPS.slice(shared)) {
      for (const statement of step(n)) await tx.unsafe(statement);
    }
    const version = await tableVersion(tx, n);
    if (version > TABLE_VERSION) {
      throw new PQError(
        "SCHEMA_TOO_NEW",
        `Cannot create ${n.qualified}: the table has pq schema version ${version}, newer than this pq's ${TABLE_VERSION}: upgrade pq`,
      );
    }
    for (const step of TABLE_STEPS.slice(version)) {
      for (const statement of step(n)) await tx.unsafe(statement);
    }
    if (version < TABLE_VERSION) {
      await tx.unsafe(
        `comment on table ${n.qualified} is ${
          quoteLiteral(`pq schema ${TABLE_VERSION}`)
        }`,
      );
    }
  });
}

/** The table's version from its comment; 0 when it does not exist. */
async function tableVersion(sql: Executor, n: TableNames): Promise<number> {
  const [row] = await sql.unsafe(
    `select obj_description(to_regclass($1), 'pg_class') as comment,
      to_regclass($1) is not null as found`,
    [n.qualified],
  );
  const version = Number(/^pq schema (\d+)$/.exec(row?.comment ?? "")?.[1]);
  return version || (row?.found ? 1 : 0);
}

/**
 * The shared objects' version: the lowest marker in the bodies of
 * `pq_wait` and `pq_notify` (a body without one is version 1), or 0 when
 * either is missing.
 */
async function sharedVersion(sql: Executor, schema: string): Promise<number> {
  const rows = await sql.unsafe(
    `select p.proname, p.prosrc from pg_proc as p
    join pg_namespace as s on s.oid = p.pronamespace
    where s.nspname = $1 and p.proname in ('pq_wait', 'pq_notify')`,
    [schema],
  );
  if (rows.length < 2) return 0;
  return Math.min(
    ...rows.map((row) =>
      Number(/-- pq shared version (\d+)/.exec(row.prosrc)?.[1] ?? 1)
    ),
  );
}

/** Resolves the schema that unqualified names land in (the search path's first). */
export async function currentSchema(sql: Sql): Promise<string> {
  const [row] = await sql.unsafe(`select current_schema() as schema`);
  if (!row?.schema) {
    throw new Error(
      "PostgreSQL has no current schema (the search_path names no existing schema): pass the 'schema' option",
    );
  }
  return row.schema;
}
