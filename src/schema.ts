/**
 * The DDL of a pq table and its numbered migrations.
 *
 * One table holds the jobs of every queue. A job is in one of four states:
 * `ready` (can be taken now), `scheduled` (waits for `schedule_at`), `failed`
 * (a task that used up its attempts) and `done` (a taken job whose data was
 * rewritten by `job.update()`, kept as a record). Taking a job deletes its row:
 * a queue table then holds only live work, and dead rows are reclaimed by
 * vacuum instead of piling up as "dequeued" rows (see bench/RESULTS.md for
 * the churn figures).
 *
 * Per schema, pq also keeps `pq_waiting` (which queues have a getter waiting,
 * so puts notify only when someone listens) and two functions. Both functions
 * are `security definer`, so a role with nothing but select, insert, update
 * and delete on the job table can use every feature.
 *
 * @module
 */

import type { Sql } from "./types.ts";
import { quoteIdent, quoteLiteral } from "./names.ts";

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
}

/**
 * Builds the quoted names of a table's objects. Without a schema they stay
 * unqualified, so the search path finds them, as PostgreSQL users expect.
 */
export function tableNames(
  schema: string | undefined,
  table: string,
): TableNames {
  const prefix = schema === undefined ? "" : `${quoteIdent(schema)}.`;
  return {
    schema,
    table,
    qualified: `${prefix}${quoteIdent(table)}`,
    waiting: `${prefix}pq_waiting`,
    waitFunction: `${prefix}pq_wait`,
    notifyFunction: `${prefix}pq_notify`,
  };
}

/**
 * Objects shared by every pq table of a schema. `create or replace` keeps
 * them current; the advisory lock in {@linkcode createSchema} keeps two
 * processes from replacing them at the same moment.
 */
function sharedObjects(n: TableNames): string[] {
  return [
    `create table if not exists ${n.waiting} (
      relid oid not null,
      queue text not null,
      listener text not null,
      expires_at timestamptz not null,
      primary key (relid, queue, listener)
    )`,
    // Registers (ttl > 0) or removes (ttl <= 0) one listener's interest in
    // some queues of a table, and drops registrations that expired a while
    // ago (their listener died without removing them).
    `create or replace function ${n.waitFunction}(
      p_relid oid, p_queues text[], p_listener text, p_ttl_ms float8
    ) returns void language plpgsql security definer
    set search_path = pg_catalog, pg_temp as $$
    begin
      delete from ${n.waiting}
      where expires_at < statement_timestamp() - interval '1 minute'
         or (p_ttl_ms <= 0 and relid = p_relid and listener = p_listener
             and queue = any(p_queues));
      if p_ttl_ms > 0 then
        insert into ${n.waiting} (relid, queue, listener, expires_at)
        select p_relid, q, p_listener,
               statement_timestamp() + p_ttl_ms * interval '1 millisecond'
        from unnest(p_queues) as q
        on conflict (relid, queue, listener)
        do update set expires_at = excluded.expires_at;
      end if;
    end $$`,
    // One notification per queue and statement, and only when a listener
    // waits on that queue: a NOTIFY takes a database-wide lock at commit that
    // serializes all notifying transactions (bench/RESULTS.md). The payload is
    // "<ready plain> <ready task> <scheduled> <queue>".
    `create or replace function ${n.notifyFunction}() returns trigger
    language plpgsql security definer
    set search_path = pg_catalog, pg_temp as $$
    declare
      r record;
    begin
      -- Most inserts find nobody waiting on the table at all: stop there.
      if not exists (
        select 1 from ${n.waiting} as w
        where w.relid = tg_relid and w.expires_at > statement_timestamp()
      ) then
        return null;
      end if;
      for r in
        select j.queue,
               count(*) filter (where j.state = 'ready' and j.task is null) as plain,
               count(*) filter (where j.state = 'ready' and j.task is not null) as tasks,
               count(*) filter (where j.state = 'scheduled') as scheduled
        from new_rows as j
        where j.state in ('ready', 'scheduled')
        group by j.queue
      loop
        if exists (
          select 1 from ${n.waiting} as w
          where w.relid = tg_relid and w.queue = r.queue
            and w.expires_at > statement_timestamp()
        ) then
          perform pg_notify(
            'pq_' || tg_relid,
            r.plain || ' ' || r.tasks || ' ' || r.scheduled || ' ' || r.queue
          );
        end if;
      end loop;
      return null;
    end $$`,
  ];
}

/**
 * Migrations of the job table, by version. Each runs once, in the same
 * transaction that records its version in the table's comment.
 */
function migrations(n: TableNames): string[][] {
  const t = n.qualified;
  return [
    // 1: the table, its indexes and the notify trigger.
    [
      // The three partial indexes each serve one statement on the hot path:
      // taking plain jobs (get), taking task jobs (work), and finding
      // scheduled jobs that came due. A row sits in at most one of them, so a
      // put updates two indexes (this one and the primary key).
      `create index on ${t} (queue, expected_at, id)
       where state = 'ready' and task is null`,
      `create index on ${t} (queue, expected_at, id)
       where state = 'ready' and task is not null`,
      `create index on ${t} (queue, schedule_at) where state = 'scheduled'`,
      `create index on ${t} (queue, id) where state in ('failed', 'done')`,
      `create trigger pq_notify after insert on ${t}
       referencing new table as new_rows
       for each statement execute function ${n.notifyFunction}()`,
    ],
  ];
}

/** The `create table` statement of the job table. */
function createTable(n: TableNames): string {
  return `create table if not exists ${n.qualified} (
    id bigint generated by default as identity primary key,
    queue text not null,
    state text not null default 'ready'
      check (state in ('ready', 'scheduled', 'failed', 'done')),
    task text,
    data json not null,
    attempts integer not null default 0,
    enqueued_at timestamptz not null default statement_timestamp(),
    schedule_at timestamptz,
    expected_at timestamptz,
    finished_at timestamptz,
    error json
  ) with (
    -- A queue table turns over all the time: vacuum after 1,000 dead rows,
    -- not 20% of the table, and at full speed (see src/vacuum.ts).
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_delay = 0
  )`;
}

/**
 * Creates or upgrades the table, its indexes, trigger and the schema's shared
 * objects. Idempotent, and safe when several processes call it at once: the
 * whole upgrade runs in one transaction under a transaction-level advisory
 * lock (pooler-safe, unlike a session lock).
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
    for (const statement of sharedObjects(n)) await tx.unsafe(statement);
    await tx.unsafe(createTable(n));
    const [row] = await tx.unsafe(
      `select obj_description(${
        quoteLiteral(n.qualified)
      }::regclass, 'pg_class') as comment`,
    );
    const version = Number(/^pq schema (\d+)$/.exec(row?.comment ?? "")?.[1]) ||
      0;
    const steps = migrations(n);
    if (version > steps.length) {
      throw new Error(
        `The table ${n.qualified} has pq schema version ${version}, newer than this pq (${steps.length}): upgrade pq`,
      );
    }
    for (const statement of steps.slice(version).flat()) {
      await tx.unsafe(statement);
    }
    if (version < steps.length) {
      await tx.unsafe(
        `comment on table ${n.qualified} is ${
          quoteLiteral(`pq schema ${steps.length}`)
        }`,
      );
    }
  });
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
