/**
 * The other sessions of the pressure workload (bench/pressure.ts): a holder
 * that pins the MVCC horizon, long `REPEATABLE READ` readers, a killer of
 * pq's backends, and the server-side figures of each window.
 *
 * @module
 */

import type { Sql } from "../mod.ts";
import { sleep } from "./db.ts";

/** A session that runs until `stop()` resolves. */
export interface Session {
  stop(): Promise<void>;
}

/**
 * `begin; select txid_current();` and nothing more until stopped: the
 * transaction's xid pins the horizon, so VACUUM may reclaim no row deleted
 * after it began (a forgotten console session, a long migration).
 */
export async function holder(admin: Sql): Promise<Session> {
  const reserved = await admin.reserve();
  await reserved`begin`;
  await reserved`select txid_current()`;
  return {
    async stop() {
      try {
        await reserved`commit`;
      } finally {
        reserved.release();
      }
    },
  };
}

/**
 * `count` sessions that each scan the queue table in `REPEATABLE READ`
 * transactions of `txMs` (staggered, so that the oldest snapshot is always
 * between 3/4 of `txMs` and `txMs` old), pausing `pauseMs` between scans.
 */
export function readers(
  admin: Sql,
  table: string,
  count: number,
  txMs: number,
  pauseMs = 200,
): Session {
  let stopped = false;
  const scans = { n: 0 };
  const loops = Array.from({ length: count }, async (_, k) => {
    await sleep((k * txMs) / count);
    while (!stopped) {
      const began = performance.now();
      await admin.begin("isolation level repeatable read", async (tx) => {
        while (!stopped && performance.now() - began < txMs) {
          await tx.unsafe(
            `select count(*), sum(length(data::text)) from ${table}`,
          );
          scans.n++;
          await sleep(pauseMs);
        }
      });
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** What the killer did. */
export interface KillCounts {
  /** Backends terminated. */
  killed: number;
  /** Of those, backends seen for the first time in the latest poll. */
  young: number;
}

/**
 * Terminates backends of role `role` at `perSecond`, polling
 * `pg_stat_activity` every `pollMs`: a backend that appeared since the last
 * poll (a connection being opened, maybe in its type lookup) goes first,
 * else a random one.
 */
export function killer(
  admin: Sql,
  role: string,
  perSecond: number,
  counts: KillCounts,
  pollMs = 100,
): Session {
  let stopped = false;
  const seen = new Set<number>();
  const loop = (async () => {
    let tokens = 0;
    let last = performance.now();
    while (!stopped) {
      await sleep(pollMs);
      const now = performance.now();
      tokens = Math.min(1, tokens + ((now - last) / 1000) * perSecond);
      last = now;
      const rows = await admin`select pid from pg_stat_activity
        where usename = ${role} and pid <> pg_backend_pid()`;
      const pids = rows.map((r) => r.pid as number);
      const fresh = pids.filter((pid) => !seen.has(pid));
      for (const pid of pids) seen.add(pid);
      if (tokens < 1 || pids.length === 0) continue;
      const young = fresh.length > 0;
      const pool = young ? fresh : pids;
      const pid = pool[Math.floor(Math.random() * pool.length)];
      const [row] = await admin`select pg_terminate_backend(${pid}) as ok`;
      if (row.ok) {
        tokens -= 1;
        counts.killed++;
        if (young) counts.young++;
      }
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** The server's view of the queue in one window. */
export interface ServerSample {
  /** `pg_relation_size` of the table and of the ready task index. */
  tableBytes: number;
  indexBytes: number;
  /** Index entries (`pgstattuple`), and of those marked dead (LP_DEAD). */
  indexEntries: number;
  indexDeadMarked: number;
  /** Ready rows visible now (live entries of the index). */
  ready: number;
  /** The take's EXPLAIN (ANALYZE, BUFFERS): ms and shared buffers hit. */
  takeMs: number;
  takeBuffers: number;
  /** Its text. */
  plan: string;
  /** pq's backends by state (active, idle in transaction, ...). */
  backends: Record<string, number>;
}

/**
 * Samples the table and its ready task index. The take is explained
 * without its row locks (`for no key update skip locked` and the delete
 * would take jobs from the worker): the index scan it measures is the same.
 */
export async function sampleServer(
  admin: Sql,
  schema: string,
  table: string,
  queue: string,
  role: string,
  hasPgstattuple: boolean,
): Promise<ServerSample> {
  const t = `"${schema}"."${table}"`;
  const index = `"${schema}"."${table}_ready_task_idx"`;
  const [sizes] = await admin.unsafe(
    `select pg_relation_size($1::regclass)::int8 as table_bytes,
      pg_relation_size($2::regclass)::int8 as index_bytes`,
    [t, index],
  );
  let entries = NaN, marked = NaN;
  if (hasPgstattuple) {
    const [s] = await admin.unsafe(
      `select tuple_count::int8 as n, dead_tuple_count::int8 as dead
      from pgstattuple($1::regclass)`,
      [index],
    );
    entries = Number(s.n);
    marked = Number(s.dead);
  }
  const [ready] = await admin.unsafe(
    `select count(*)::int8 as n from ${t}
    where queue = $1 and state = 'ready' and task is not null`,
    [queue],
  );
  const plan = (await admin.unsafe(
    `explain (analyze, buffers, timing off, costs off)
    select id from ${t}
    where queue = '${queue.replaceAll("'", "''")}' and state = 'ready'
      and task is not null and task = any('{job}'::text[])
    order by expected_at, id limit 16`,
  )).map((r) => r["QUERY PLAN"] as string).join("\n");
  const hit = /shared hit=(\d+)/.exec(plan);
  const read = /read=(\d+)/.exec(plan);
  const time = /Execution Time: ([\d.]+)/.exec(plan);
  const states = await admin`select coalesce(state, '?') as state,
      count(*)::int as n
    from pg_stat_activity where usename = ${role} group by 1`;
  return {
    tableBytes: Number(sizes.table_bytes),
    indexBytes: Number(sizes.index_bytes),
    indexEntries: entries,
    indexDeadMarked: marked,
    ready: Number(ready.n),
    takeMs: time ? Number(time[1]) : NaN,
    takeBuffers: (hit ? Number(hit[1]) : 0) + (read ? Number(read[1]) : 0),
    plan,
    backends: Object.fromEntries(states.map((r) => [r.state, r.n])),
  };
}
