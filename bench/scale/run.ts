/**
 * How far one server goes: `deno task bench:scale` (a few minutes;
 * `--quick` for a smoke run). Two parts, printed as tables for SCALING.md:
 *
 * - The curve: 1, 2, 4 and 8 worker processes (each `work({ concurrency:
 *   8, burst: true })`) drain a backlog of 100,000 no-op task jobs (10,000
 *   quick). Throughput, the server's CPU (all its processes, from /proc),
 *   and the most connections seen in `pg_stat_activity`.
 * - Idle getters: what 1,000 waiting `get()`s cost in connections, as one
 *   PQ (one listener for all) and as separate PQs (a listener and a pool
 *   connection each, measured for 20 and multiplied), and how the take
 *   rate of one worker changes while they wait.
 *
 * `--pgbouncer` measures only the waiting getters: as above, and through a
 * PgBouncer in transaction mode (`pgbouncer.ts`) as one PQ with 1,000
 * getters and as 1,000 PQs with one each (too many to connect directly).
 *
 * @module
 */

import process from "node:process";
import { spawn } from "node:child_process";
import {
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { benchUrl, freshSchema } from "../db.ts";
import { bouncedGetters } from "./pgbouncer.ts";

const quick = process.argv.includes("--quick");
const pgbouncer = process.argv.includes("--pgbouncer");
const url = benchUrl();
const log = (text: string) => process.stderr.write(`${text}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const JOBS = quick ? 10_000 : 100_000;

/**
 * CPU ticks (user + system) of the PostgreSQL server: its live processes,
 * plus what its ended ones used (the postmaster's children times).
 */
function serverTicks(): number {
  let ticks = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      if (name !== "postgres") continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) +
        Number(fields[14]);
    } catch {
      // Gone meanwhile.
    }
  }
  return ticks;
}

const TICKS_PER_SECOND = 100;

interface CurvePoint {
  processes: number;
  jobsPerSecond: number;
  serverCpuCores: number;
  connections: number;
}

async function curvePoint(processes: number): Promise<CurvePoint> {
  const sql = postgres(url, { max: 4, onnotice: () => {} });
  const scratch = await freshSchema(sql);
  const dir = mkdtempSync(join(tmpdir(), "pq-scale-"));
  const go = join(dir, "go");
  try {
    const pq = createPQ(sql, { schema: scratch.schema });
    await pq.create();
    const noop = pq.queue("jobs").task("noop", (_a: { n: number }) => {});
    for (let i = 0; i < JOBS; i += 10_000) {
      await noop.many(
        Array.from({ length: 10_000 }, (_, j) => ({ args: { n: i + j } })),
      );
    }
    await sql.unsafe(`vacuum analyze ${scratch.schema}.queue`);
    const children = Array.from(
      { length: processes },
      () =>
        spawn(process.execPath, [
          "run",
          "-A",
          "bench/scale/worker.ts",
          scratch.schema,
          go,
        ], {
          env: { ...process.env, DATABASE_URL: url },
          stdio: ["ignore", "pipe", "inherit"],
        }),
    );
    const outputs = children.map((child) => {
      let text = "";
      child.stdout!.setEncoding("utf8").on("data", (s) => (text += s));
      return {
        ready: async () => {
          while (!text.includes("READY")) await sleep(10);
        },
        done: new Promise<number>((resolve) =>
          child.on("close", () => resolve(Number(/DONE (\d+)/.exec(text)?.[1])))
        ),
      };
    });
    await Promise.all(outputs.map((o) => o.ready()));
    let connections = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const [row] = await sql`select count(*)::int as n
          from pg_stat_activity where datname = current_database()`;
        connections = Math.max(connections, row.n);
        await sleep(100);
      }
    })();
    const ticks0 = serverTicks();
    const start = performance.now();
    writeFileSync(go, "");
    const done = await Promise.all(outputs.map((o) => o.done));
    const ms = performance.now() - start;
    const ticks = serverTicks() - ticks0;
    sampling = false;
    await sampler;
    const total = done.reduce((a, b) => a + b, 0);
    if (total !== JOBS) throw new Error(`did ${total} of ${JOBS} jobs`);
    await pq.close();
    return {
      processes,
      jobsPerSecond: JOBS / ms * 1000,
      serverCpuCores: ticks / TICKS_PER_SECOND / (ms / 1000),
      connections,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await scratch.drop();
    await sql.end();
  }
}

/**
 * Listener connections of other processes on the server (other runs, tests):
 * counted before a measurement and taken off it, since every PQ's listener
 * has the same application_name.
 */
async function otherListeners(sql: postgres.Sql): Promise<number> {
  const [row] = await sql`select count(*)::int as n from pg_stat_activity
    where application_name = 'pq listener'`;
  return row.n;
}

/** Connections of `count` separate PQs, each with one waiting get(). */
async function separatePQs(count: number): Promise<number> {
  const admin = postgres(url, { max: 2, onnotice: () => {} });
  const scratch = await freshSchema(admin);
  const clients = Array.from({ length: count }, () =>
    postgres(url, {
      max: 2,
      onnotice: () => {},
      connection: { application_name: "pq scale getter" },
    }));
  const pqs = clients.map((sql) => createPQ(sql, { schema: scratch.schema }));
  const stop = new AbortController();
  try {
    const others = await otherListeners(admin);
    await pqs[0].create();
    const waits = pqs.map((pq) =>
      pq.queue("idle").get({ timeout: "1h", signal: stop.signal }).catch(
        () => null,
      )
    );
    await sleep(2_000);
    const [row] = await admin`select count(*)::int as n from pg_stat_activity
      where application_name in ('pq scale getter', 'pq listener')`;
    stop.abort();
    await Promise.all(waits);
    return row.n - others;
  } finally {
    for (const pq of pqs) await pq.close();
    for (const sql of clients) await sql.end();
    await scratch.drop();
    await admin.end();
  }
}

/**
 * One PQ with 1,000 waiting get()s beside a worker draining jobs: the
 * connections the getters cost, and the worker's rate with and without
 * them.
 */
async function sharedGetters(): Promise<
  { connections: number; withGetters: number; without: number }
> {
  const sql = postgres(url, {
    max: 12,
    onnotice: () => {},
    connection: { application_name: "pq scale shared" },
  });
  const scratch = await freshSchema(sql);
  const others = await otherListeners(sql);
  const pq = createPQ(sql, { schema: scratch.schema });
  await pq.create();
  const drain = async () => {
    const n = quick ? 2_000 : 20_000;
    const noop = pq.queue("jobs").task(`noop${Math.random()}`, () => {});
    for (let i = 0; i < n; i += 1_000) {
      await noop.many(Array.from({ length: 1_000 }, () => ({ args: {} })));
    }
    const start = performance.now();
    await pq.queue("jobs").work({ concurrency: 8, burst: true });
    return n / (performance.now() - start) * 1000;
  };
  try {
    const without = await drain();
    const stop = new AbortController();
    const waits = Array.from(
      { length: 1_000 },
      () =>
        pq.queue("idle").get({ timeout: "1h", signal: stop.signal }).catch(
          () => null,
        ),
    );
    await sleep(2_000);
    const [row] = await sql`select count(*)::int as n from pg_stat_activity
      where application_name in ('pq scale shared', 'pq listener')`;
    const withGetters = await drain();
    stop.abort();
    await Promise.all(waits);
    return { connections: row.n - others, withGetters, without };
  } finally {
    await pq.close();
    await scratch.drop();
    await sql.end();
  }
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });

if (pgbouncer) {
  log("1,000 waiting getters, directly and through PgBouncer...");
  const shared = await sharedGetters();
  const separate = await separatePQs(20);
  const windowMs = quick ? 3_000 : 10_000;
  const onePQ = await bouncedGetters(url, { pqs: 1, getters: 1_000, windowMs });
  const manyPQs = await bouncedGetters(url, {
    pqs: 1_000,
    getters: 1,
    windowMs,
  });
  if (typeof onePQ === "string") throw new Error(onePQ);
  if (typeof manyPQs === "string") throw new Error(manyPQs);
  console.log(
    `pq scale: waiting getters through ${onePQ.version} (transaction mode, default_pool_size 20), pq with listen: false and pollInterval 1s`,
  );
  console.log();
  console.log(
    "| 1,000 waiting getters | server connections, direct | through PgBouncer: client connections | server connections | busy at once (most) | statements/s |",
  );
  console.log("| --- | --: | --: | --: | --: | --: |");
  const row = (name: string, direct: string, b: typeof onePQ) =>
    console.log(
      `| ${name} | ${direct} | ${
        fmt(b.clients)
      } | ${b.servers} | ${b.busiest} | ${fmt(b.statementsPerSecond)} |`,
    );
  row("on one PQ", String(shared.connections), onePQ);
  row(
    "1,000 PQs, one each",
    `~${fmt(separate / 20 * 1000)} (20 PQs: ${separate})`,
    manyPQs,
  );
  process.exit(0);
}

const points: CurvePoint[] = [];
for (const processes of [1, 2, 4, 8]) {
  log(`${processes} worker process(es), ${fmt(JOBS)} jobs...`);
  points.push(await curvePoint(processes));
}
log("1,000 waiting getters on one PQ...");
const shared = await sharedGetters();
log("20 separate PQs, one waiting getter each...");
const separate = await separatePQs(20);

console.log(
  `pq scale, ${quick ? "quick" : "full"} run, ${fmt(JOBS)}-job backlog`,
);
console.log();
console.log(
  "| worker processes (concurrency 8 each) | jobs/s | x 1 process | server CPU (cores) | most connections |",
);
console.log("| --: | --: | --: | --: | --: |");
for (const p of points) {
  console.log(
    `| ${p.processes} | ${fmt(p.jobsPerSecond)} | ${
      fmt(p.jobsPerSecond / points[0].jobsPerSecond, 2)
    } | ${fmt(p.serverCpuCores, 2)} | ${p.connections} |`,
  );
}
console.log();
console.log("| waiting getters | connections | worker jobs/s beside them |");
console.log("| --- | --: | --: |");
console.log(
  `| none | - | ${fmt(shared.without)} |`,
);
console.log(
  `| 1,000 on one PQ | ${shared.connections} (pool + 1 listener) | ${
    fmt(shared.withGetters)
  } |`,
);
console.log(
  `| 20 PQs, one each | ${separate} (${
    fmt(separate / 20, 1)
  } per PQ; 1,000 such PQs: ~${fmt(separate / 20 * 1000)}) | - |`,
);
