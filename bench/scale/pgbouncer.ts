/**
 * Waiting getters behind PgBouncer in transaction mode, for
 * `deno task bench:scale --pgbouncer`: the connections they cost on the
 * server, counted as PgBouncer's server connections (`SHOW SERVERS`) that
 * are backends in `pg_stat_activity`, and the statements their polls send.
 *
 * pq runs there as behind any transaction-mode pooler: `prepare: false` and
 * `listen: false`, so its getters poll every `pollInterval` (README,
 * "Serverless and poolers"). PgBouncer comes from `tests/pgbouncer.ts`
 * (Debian's `pgbouncer` package).
 *
 * @module
 */

import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { startPgBouncer } from "../../tests/pgbouncer.ts";
import { freshSchema } from "../db.ts";

/** What the getters cost through PgBouncer. */
export interface BouncedGetters {
  /** PgBouncer's version line. */
  version: string;
  /** Client connections PgBouncer held for them. */
  clients: number;
  /** Backends on the server that PgBouncer opened for them. */
  servers: number;
  /** The most server connections busy at once, sampled every 100 ms. */
  busiest: number;
  /** Statements PgBouncer passed on per second while they waited. */
  statementsPerSecond: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `pqs` PQs (each its own client of `max: 2`) with `getters` waiting
 * `get()`s each, all through one PgBouncer (`default_pool_size` 20) in front
 * of `url`, and measures them over `windowMs` once they all wait.
 *
 * @returns The figures, or why PgBouncer could not run here.
 */
export async function bouncedGetters(
  url: string,
  options: { pqs: number; getters: number; windowMs: number },
): Promise<BouncedGetters | string> {
  const { pqs, getters, windowMs } = options;
  const bouncer = await startPgBouncer(url, { maxClientConn: 3 * pqs + 100 });
  if (typeof bouncer === "string") return bouncer;
  const direct = postgres(url, { max: 2, onnotice: () => {} });
  const adminUrl = new URL(bouncer.url);
  adminUrl.pathname = "/pgbouncer";
  // The admin console speaks the simple protocol only.
  const admin = postgres(adminUrl.href, {
    max: 1,
    fetch_types: false,
    prepare: false,
    onnotice: () => {},
  });
  const show = (what: string) =>
    admin.unsafe(`show ${what}`).simple() as Promise<Record<string, unknown>[]>;
  const database = new URL(url).pathname.slice(1);
  const mine = (row: Record<string, unknown>) => row.database === database;
  const scratch = await freshSchema(direct);
  const clients = Array.from(
    { length: pqs },
    () => postgres(bouncer.url, { max: 2, prepare: false, onnotice: () => {} }),
  );
  const opened = clients.map((sql) =>
    createPQ(sql, { schema: scratch.schema, listen: false })
  );
  const stop = new AbortController();
  let settled = 0;
  try {
    await createPQ(direct, { schema: scratch.schema }).create();
    const waits = opened.flatMap((pq) => {
      const queue = pq.queue("idle");
      return Array.from(
        { length: getters },
        () =>
          queue.get({ timeout: "1h", signal: stop.signal }).catch(() => null)
            .finally(() => settled++),
      );
    });
    const queries = async () =>
      Number((await show("stats")).find(mine)?.total_query_count ?? 0);
    // Every getter has taken once and waits when only polls go on: about
    // one statement per PQ and second (`pollInterval` 1 s). Through the
    // pooler, the first takes of 1,000 getters on one PQ took seconds.
    const polls = 1.5 * pqs + 5;
    await sleep(3_000);
    for (let last = await queries(), i = 0; i < 120; i++) {
      await sleep(1_000);
      const now = await queries();
      if (now - last <= polls) break;
      last = now;
    }
    const before = await queries();
    const start = performance.now();
    let busiest = 0;
    while (performance.now() - start < windowMs) {
      const pool = (await show("pools")).find(mine);
      busiest = Math.max(busiest, Number(pool?.sv_active ?? 0));
      await sleep(100);
    }
    const statementsPerSecond = (await queries() - before) /
      ((performance.now() - start) / 1000);
    const pids = (await show("servers")).filter(mine).map((s) =>
      Number(s.remote_pid)
    );
    const [{ n: servers }] = await direct`select count(*)::int as n
      from pg_stat_activity where pid = any(${pids}::int[])`;
    const clientCount = (await show("clients")).filter(mine).length;
    if (settled > 0) throw new Error(`${settled} getters stopped waiting`);
    stop.abort();
    await Promise.all(waits);
    return {
      version: bouncer.version,
      clients: clientCount,
      servers,
      busiest,
      statementsPerSecond,
    };
  } finally {
    stop.abort();
    await Promise.all(opened.map((pq) => pq.close()));
    await Promise.all(clients.map((sql) => sql.end({ timeout: 1 })));
    await admin.end();
    await scratch.drop();
    await direct.end();
    await bouncer.stop();
  }
}
