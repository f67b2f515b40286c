/**
 * pressure (issue 18): pq under a pinned MVCC horizon, long readers, and
 * backends killed under load. `deno task bench:pressure` runs for minutes;
 * `--quick` for about one.
 *
 * Producers put single task jobs at a fixed rate (open loop: a put is due at
 * its time whether or not earlier ones resolved; at most 200 in flight), a
 * worker runs them (16 handlers of 1 ms, transaction mode), and phases
 * follow each other:
 *
 * - `--mode=horizon` (default): clean; a holder session that pins the
 *   horizon (`begin; select txid_current();`, idle in transaction); four
 *   `REPEATABLE READ` sessions scanning the queue table in staggered
 *   transactions of `--reader-tx` seconds; after.
 * - `--mode=backend_kill`: clean; `pg_terminate_backend` of pq's backends at
 *   `--kills` per second (every 100 ms the killer polls `pg_stat_activity`;
 *   a backend that appeared since the last poll goes first, so connections
 *   are also killed while being opened); after.
 *
 * Per 5-second window (`--window=S`) it prints: jobs offered (due to be put),
 * put and completed; pickup p50/p99 from the put's resolution to the
 * handler's start, for the jobs put in that window (so a stalled job counts
 * where it was put); the client-side backlog at the window's end; and the
 * server's view: the table's size, the ready task index's size and entries
 * (`pgstattuple`, when installable), the live ready rows among them, and an
 * index walk from the start as a take from the start makes it (`EXPLAIN
 * (ANALYZE, BUFFERS)`: shared buffers and time; while the walk is slow, pq's
 * takes start past their low-water marks and only one a second walks from
 * the start, see src/take_marks.ts). At the end:
 * per-phase figures, every job's count of completions (none lost, none
 * twice; in backend_kill mode counted by the effect each handler writes
 * through `job.tx`, since a commit's answer can die with its connection), and the plans of the clean window and the costliest one.
 *
 * pq connects as a role of its own (`pq_pressure`, created if missing) so
 * that the killer and the samples find its backends, the listener's
 * included, by `usename`.
 *
 * Options: `--mode=horizon|backend_kill`, `--rate=500`, `--concurrency=16`,
 * `--handler-ms=1`, `--clean=30 --holder=90 --readers=60 --after=60`
 * (horizon), `--kill=60 --kills=2` (backend_kill; clean and after as
 * above), `--reader-tx=20`, `--window=5`, `--lease=30` (horizon mode: the
 * task in lease mode with a lease of that many seconds; default 0,
 * transaction mode), `--quick` (every phase shorter:
 * about a minute in all), `--json=file` (windows and totals as JSON).
 *
 * @module
 */

import process from "node:process";
import postgres from "postgres";
import { createPQ, type Sql } from "../mod.ts";
import { benchUrl, connect, freshSchema, sleep } from "./db.ts";
import {
  holder,
  type KillCounts,
  killer,
  readers,
  sampleServer,
  type ServerSample,
  type Session,
} from "./pressure_sessions.ts";
import { formatBytes, formatCount, percentile } from "./stats.ts";

const ROLE = "pq_pressure";
const QUEUE = "pressure";
const MAX_IN_FLIGHT = 200;

const args = process.argv.slice(2);
function option(name: string, fallback: number): number;
function option(name: string, fallback: string): string;
function option(name: string, fallback: number | string): number | string {
  const prefix = `--${name}=`;
  const text = args.find((a) => a.startsWith(prefix))?.slice(prefix.length);
  if (text === undefined) return fallback;
  if (typeof fallback === "string") return text;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a number ≥ 0: received "${text}"`);
    process.exit(2);
  }
  return n;
}
const known =
  /^--(quick|mode=(horizon|backend_kill)|(rate|concurrency|handler-ms|clean|holder|readers|after|kill|kills|reader-tx|window|lease)=[\d.]+|json=.+)$/;
const unknown = args.filter((a) => !known.test(a));
if (unknown.length) {
  console.error(
    `Unknown arguments: ${unknown.join(" ")} (see bench/pressure.ts)`,
  );
  process.exit(2);
}
const quick = args.includes("--quick");
const mode = option("mode", "horizon") as "horizon" | "backend_kill";
const rate = option("rate", 500);
const concurrency = option("concurrency", 16);
const handlerMs = option("handler-ms", 1);
const windowMs = option("window", 5) * 1000;
const readerTxMs = option("reader-tx", quick ? 10 : 20) * 1000;
const killsPerSecond = option("kills", 2);
/** Seconds of a lease mode task's lease; 0: transaction mode. */
const leaseS = option("lease", 0);
if (leaseS > 0 && mode === "backend_kill") {
  console.error(
    "--lease is for --mode=horizon: backend_kill counts effects written through job.tx",
  );
  process.exit(2);
}

/** One phase: its name, length, and the session it runs. */
interface Phase {
  name: string;
  ms: number;
  start?: () => Promise<Session>;
}
const s = (name: string, full: number, short: number) =>
  option(name, quick ? short : full) * 1000;
const kills: KillCounts = { killed: 0, young: 0 };

const url = benchUrl();
// Few connections: the server's 100 are shared with other work.
const admin = connect(url, 6);
const scratch = await freshSchema(admin);
const schema = scratch.schema;
const table = `"${schema}"."queue"`;
const phases: Phase[] = mode === "horizon"
  ? [
    { name: "clean", ms: s("clean", 30, 10) },
    { name: "holder", ms: s("holder", 90, 20), start: () => holder(admin) },
    {
      name: "readers",
      ms: s("readers", 60, 15),
      start: () => Promise.resolve(readers(admin, table, 4, readerTxMs)),
    },
    { name: "after", ms: s("after", 60, 15) },
  ]
  : [
    { name: "clean", ms: s("clean", 30, 10) },
    {
      name: "kill",
      ms: s("kill", 60, 30),
      start: () => Promise.resolve(killer(admin, ROLE, killsPerSecond, kills)),
    },
    { name: "after", ms: s("after", 60, 15) },
  ];
const totalMs = phases.reduce((sum, p) => sum + p.ms, 0);

// pq's role: its backends are the ones with this usename.
await admin.unsafe(`do $$ begin
    if not exists (select from pg_roles where rolname = '${ROLE}') then
      create role ${ROLE} login;
    end if;
  end $$`);
await admin.unsafe(`alter schema "${schema}" owner to ${ROLE}`);
// backend_kill: each handler writes its job's index through job.tx, so that a
// batch whose commit landed while its connection died (no success event: the
// client never heard the commit) still counts, and a job done twice shows.
const effects = `"${schema}".effects`;
await admin.unsafe(`create table ${effects} (i int4 not null)`);
await admin.unsafe(`alter table ${effects} owner to ${ROLE}`);
const hasPgstattuple = await admin.unsafe(
  `create extension if not exists pgstattuple`,
).then(() => true, () => false);
const pqUrl = new URL(url);
pqUrl.username = ROLE;
pqUrl.password = "";
// The worker's pool: one connection per handler slot, and one more.
const workerSql: Sql = postgres(pqUrl.href, {
  max: concurrency + 1,
  onnotice: () => {},
});
const producerSql: Sql = postgres(pqUrl.href, { max: 4, onnotice: () => {} });
const workerPQ = createPQ(workerSql, { schema });
await workerPQ.create();
const producerPQ = createPQ(producerSql, { schema });

// Per job i: when its put resolved, when its handler first started, and
// how many times it completed (a success event comes after the commit).
const capacity = Math.ceil((rate * totalMs) / 1000) + 1000;
const putAt = new Float64Array(capacity).fill(NaN);
const startAt = new Float64Array(capacity).fill(NaN);
const completions = new Uint8Array(capacity);
const putFailed = new Uint8Array(capacity);
/** Job ids by index (from the put), and the ids of every success event. */
const indexOf = new Map<string, number>();
const successIds: string[] = [];

/** The figures of one window. */
interface Window {
  phase: string;
  /** Seconds since the start. */
  at: number;
  offered: number;
  put: number;
  putFailed: number;
  done: number;
  errors: number;
  backlog: number;
  server?: ServerSample;
  p50?: number;
  p99?: number;
  max?: number;
  /** Jobs put in this window and never started. */
  unstarted?: number;
}

let issued = 0, acked = 0, failed = 0, done = 0, errors = 0;
const windows: Window[] = [];
const workStop = new AbortController();
let unhandled = 0;
const onUnhandled = (reason: unknown) => {
  // postgres.js 3.4.9 drops the promise of its array-type lookup on a new
  // connection (porsager/postgres#1192): when the killer ends that backend,
  // the rejection is unhandled. Counted, not fatal, so the run goes on.
  unhandled++;
  if (unhandled <= 3) console.error("unhandled rejection:", reason);
};
if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") {
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    onUnhandled(e.reason);
  });
} else process.on("unhandledRejection", onUnhandled);

const job = producerPQ.queue(QUEUE).task("job", (_: { i: number }) => {});
const q = workerPQ.queue(QUEUE);
q.task("job", async ({ i }: { i: number }, running) => {
  if (Number.isNaN(startAt[i])) startAt[i] = performance.now();
  if (mode === "backend_kill") {
    await running.tx!.unsafe(`insert into ${effects} values ($1)`, [i]);
  }
  if (handlerMs > 0) await sleep(handlerMs);
}, leaseS > 0 ? { lease: leaseS * 1000 } : {});
const working = q.work({
  concurrency,
  signal: workStop.signal,
  onEvent: (e) => {
    if (e.type === "success") {
      done++;
      lastDoneAt = performance.now();
      successIds.push(e.job.id);
    } else if (e.type === "error") errors++;
  },
});

const log = (text: string) => process.stderr.write(`${text}\n`);
const began = performance.now();
let stopping = false;

/** Puts under way: job index -> when the call was made. */
const pending = new Map<number, number>();

/** The puts under way for more than a second, and the oldest one's age. */
function stuckPuts(): { n: number; oldestMs: number } {
  const now = performance.now();
  let n = 0, oldestMs = 0;
  for (const at of pending.values()) {
    if (now - at > 1000) n++;
    oldestMs = Math.max(oldestMs, now - at);
  }
  return { n, oldestMs };
}

/**
 * Stalls: every 100 ms, if nothing completed for a second, note the
 * driver's reconnect state and the server's view once per stall.
 */
const stalls: { at: number; ms: number; note: string }[] = [];
let lastDoneAt = performance.now();
async function watchStalls(): Promise<void> {
  let current: { at: number; ms: number; note: string } | null = null;
  while (!stopping) {
    await sleep(100);
    const gap = performance.now() - lastDoneAt;
    if (gap < 1000) {
      current = null;
      continue;
    }
    if (current) {
      current.ms = gap;
      continue;
    }
    const retries = (sql: Sql) =>
      (sql.options as unknown as { shared: { retries: number } }).shared
        .retries;
    const rows = await admin`select coalesce(state, '-') as state,
        application_name as app, left(query, 30) as query
      from pg_stat_activity where usename = ${ROLE}`;
    current = {
      at: (performance.now() - began) / 1000,
      ms: gap,
      note: `worker pool retries ${retries(workerSql)}, producer retries ${
        retries(producerSql)
      }, ${pending.size} puts pending (${stuckPuts().n} > 1 s); pq backends: ${
        rows.map((r) => `${r.app}/${r.state}/${r.query}`).join(", ") || "none"
      }`,
    };
    stalls.push(current);
    log(`stall at ${current.at.toFixed(1)} s: ${current.note}`);
  }
}

async function produce(): Promise<void> {
  let inFlight = 0;
  let room: (() => void) | null = null;
  while (!stopping) {
    const due = Math.floor(((performance.now() - began) / 1000) * rate);
    while (issued < due && issued < capacity && !stopping) {
      if (inFlight >= MAX_IN_FLIGHT) {
        await new Promise<void>((r) => room = r);
        continue;
      }
      const i = issued++;
      inFlight++;
      pending.set(i, performance.now());
      job({ i }).then(
        (id) => {
          putAt[i] = performance.now();
          indexOf.set(id, i);
          acked++;
        },
        () => {
          putFailed[i] = 1;
          failed++;
        },
      ).finally(() => {
        pending.delete(i);
        inFlight--;
        room?.();
        room = null;
      });
    }
    await sleep(2);
  }
  // A put may never settle (postgres.js 3.4.9 loses the first query of a
  // connection killed at the wrong moment, porsager/postgres#1174): wait
  // 10 s at most, and report them.
  const until = performance.now() + 10_000;
  while (inFlight > 0 && performance.now() < until) await sleep(50);
  if (inFlight > 0) log(`${inFlight} puts never settled`);
}

/** Windows: figures at each boundary, server samples off the hot path. */
async function sampleWindows(): Promise<void> {
  let last = { offered: 0, acked: 0, failed: 0, done: 0, errors: 0 };
  for (let w = 1; w * windowMs <= totalMs; w++) {
    await sleep(began + w * windowMs - performance.now());
    const at = (performance.now() - began) / 1000;
    const offered = Math.floor(at * rate);
    const phase = phaseAt(at * 1000 - 1);
    const now = { offered, acked, failed, done, errors };
    const window: Window = {
      phase,
      at: w * windowMs / 1000,
      offered: now.offered - last.offered,
      put: now.acked - last.acked,
      putFailed: now.failed - last.failed,
      done: now.done - last.done,
      errors: now.errors - last.errors,
      backlog: acked - done,
    };
    last = now;
    windows.push(window);
    try {
      window.server = await sampleServer(
        admin,
        schema,
        "queue",
        QUEUE,
        ROLE,
        hasPgstattuple,
      );
    } catch (error) {
      log(`sample failed: ${(error as Error).message}`);
    }
    log(
      `${window.at.toFixed(0).padStart(4)} s ${
        phase.padEnd(8)
      } offered ${window.offered} put ${window.put} done ${window.done} backlog ${window.backlog}` +
        (window.server
          ? ` | table ${formatBytes(window.server.tableBytes)}, index ${
            formatBytes(window.server.indexBytes)
          }, ${
            formatCount(window.server.indexEntries)
          } entries, take ${window.server.takeBuffers} buffers ${
            window.server.takeMs.toFixed(2)
          } ms`
          : "") +
        (mode === "backend_kill" ? ` | kills ${kills.killed}` : ""),
    );
  }
}

function phaseAt(ms: number): string {
  let end = 0;
  for (const p of phases) {
    end += p.ms;
    if (ms < end) return p.name;
  }
  return phases[phases.length - 1].name;
}

async function runPhases(): Promise<void> {
  for (const phase of phases) {
    const end = began +
      phases.slice(0, phases.indexOf(phase) + 1).reduce((a, p) => a + p.ms, 0);
    const session = await phase.start?.();
    await sleep(end - performance.now());
    await session?.stop();
  }
}

let drained = false;
try {
  const producing = produce();
  const sampling = sampleWindows();
  const watching = watchStalls();
  await runPhases();
  stopping = true;
  await producing;
  await sampling;
  await watching;
  // Drain: wait for every acknowledged job to complete (at most 30 s).
  const deadline = performance.now() + 30_000;
  // A batch whose commit landed just before its connection was killed
  // completed with no success event: an empty table also means drained.
  while (performance.now() < deadline) {
    if (done >= acked) break;
    const [{ n }] = await admin.unsafe(
      `select count(*)::int as n from ${table}`,
    );
    if (n === 0) break;
    await sleep(200);
  }
  drained = true;
  if (done < acked) {
    const [{ n }] = await admin.unsafe(
      `select count(*)::int as n from ${table}`,
    );
    drained = n === 0;
    log(
      `${
        acked - done
      } acknowledged jobs without a success event, ${n} rows in the table`,
    );
  }
} finally {
  workStop.abort();
  const stopped = await Promise.race([
    working.then(() => true, (e) => (log(`work() ended with ${e}`), true)),
    sleep(10_000).then(() => false),
  ]);
  if (!stopped) log("work() did not end within 10 s of its stop");
}

// Completions per acknowledged job; a success of an unknown id is a job
// whose put failed on the client but committed on the server.
let fromFailedPuts = 0;
for (const id of successIds) {
  const i = indexOf.get(id);
  if (i === undefined) fromFailedPuts++;
  else if (completions[i] < 255) completions[i]++;
}
// With effects (backend_kill), they decide: a commit whose success event was
// lost still wrote its effect.
let silent = 0;
if (mode === "backend_kill") {
  const counted = new Uint8Array(capacity);
  for (
    const { i, n } of await admin.unsafe(
      `select i, count(*)::int as n from ${effects} group by i`,
    )
  ) counted[i] = Math.min(n, 255);
  for (let i = 0; i < issued; i++) {
    if (counted[i] > 0 && completions[i] === 0) silent++;
    completions[i] = counted[i];
  }
}
let lost = 0, twice = 0;
for (let i = 0; i < issued; i++) {
  if (Number.isNaN(putAt[i])) continue;
  if (completions[i] === 0) lost++;
  else if (completions[i] > 1) twice++;
}
const [{ left }] = await admin.unsafe(
  `select count(*)::int as left from ${table}`,
);

// Pickups by the window the put resolved in.
for (const [w, window] of windows.entries()) {
  const from = began + w * windowMs, to = from + windowMs;
  const pickups: number[] = [];
  let unstarted = 0;
  for (let i = 0; i < issued; i++) {
    const p = putAt[i];
    if (!(p >= from && p < to)) continue;
    if (Number.isNaN(startAt[i])) unstarted++;
    else pickups.push(Math.max(0, startAt[i] - p));
  }
  window.p50 = percentile(pickups, 50);
  window.p99 = percentile(pickups, 99);
  window.max = pickups.length ? Math.max(...pickups) : NaN;
  window.unstarted = unstarted;
}

const ms = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n)
    ? "-"
    : n >= 1000
    ? `${(n / 1000).toFixed(1)} s`
    : `${n.toFixed(0)} ms`;
const header = [
  "t (s)",
  "phase",
  "offered",
  "put",
  "done",
  "done/offered",
  "backlog",
  "pickup p50",
  "p99",
  "max",
  "table",
  "index",
  "entries",
  "live",
  "walk buffers",
  "walk ms",
];
const rows = windows.map((w) => [
  w.at.toFixed(0),
  w.phase,
  formatCount(w.offered),
  formatCount(w.put),
  formatCount(w.done),
  `${((w.done / w.offered) * 100).toFixed(0)}%`,
  formatCount(w.backlog),
  ms(w.p50),
  ms(w.p99),
  ms(w.max),
  w.server ? formatBytes(w.server.tableBytes) : "-",
  w.server ? formatBytes(w.server.indexBytes) : "-",
  w.server ? formatCount(w.server.indexEntries) : "-",
  w.server ? formatCount(w.server.ready) : "-",
  w.server ? formatCount(w.server.takeBuffers) : "-",
  w.server ? w.server.takeMs.toFixed(2) : "-",
]);
const widths = header.map((h, c) =>
  Math.max(h.length, ...rows.map((r) => r[c].length))
);
const line = (cells: string[]) =>
  `| ${
    cells.map((c, i) => i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))
      .join(" | ")
  } |`;

const runtime = typeof (globalThis as { Deno?: unknown }).Deno !== "undefined"
  ? `deno ${process.versions.deno}`
  : typeof (globalThis as { Bun?: unknown }).Bun !== "undefined"
  ? `bun ${process.versions.bun}`
  : `node ${process.version}`;
console.log(
  `pq pressure, mode ${mode}, ${rate} jobs/s offered, ${concurrency} handlers of ${handlerMs} ms (${
    leaseS > 0 ? `lease mode, ${leaseS} s leases` : "transaction mode"
  }), phases ${
    phases.map((p) => `${p.name} ${p.ms / 1000} s`).join(", ")
  } (${runtime}; ${((performance.now() - began) / 1000).toFixed(0)} s)`,
);
console.log();
console.log(line(header));
console.log(
  `| ${
    widths.map((w, i) => i < 2 ? "-".repeat(w) : "-".repeat(w - 1) + ":").join(
      " | ",
    )
  } |`,
);
for (const r of rows) console.log(line(r));
console.log();

// Per phase: pickups of the jobs put during it, completions against offered.
for (const phase of phases) {
  const ws = windows.filter((w) => w.phase === phase.name);
  const offered = ws.reduce((a, w) => a + w.offered, 0);
  const d = ws.reduce((a, w) => a + w.done, 0);
  const worstP99 = Math.max(...ws.map((w) => w.p99 ?? NaN));
  const peak = Math.max(...ws.map((w) => w.backlog));
  const zero = ws.filter((w) => w.done === 0).length;
  console.log(
    `- ${phase.name}: done ${formatCount(d)} of ${
      formatCount(offered)
    } offered (${((d / offered) * 100).toFixed(1)}%), worst window p99 ${
      ms(worstP99)
    }, peak backlog ${formatCount(peak)}, windows with no completion ${zero}`,
  );
}
console.log(
  `- jobs: ${formatCount(issued)} put calls, ${
    formatCount(acked)
  } acknowledged, ${
    formatCount(failed)
  } failed (outcome unknown, not retried); ${
    formatCount(done)
  } completions (${fromFailedPuts} of jobs whose put failed); acknowledged jobs not completed: ${lost}, completed twice: ${twice}; rows left in the table: ${left}; drained: ${drained}; worker errors recovered: ${errors}${
    mode === "backend_kill"
      ? `; jobs whose effect committed with no success event (the commit's answer lost with its connection): ${silent}; backends killed: ${kills.killed} (${kills.young} of them new since the previous poll)`
      : ""
  }; unhandled rejections: ${unhandled}`,
);
const clean = windows.find((w) => w.phase === "clean" && w.server);
const worst =
  windows.filter((w) => w.server).sort((a, b) =>
    b.server!.takeBuffers - a.server!.takeBuffers
  )[0];
if (clean?.server && worst?.server) {
  console.log();
  console.log(
    `The take's index scan (EXPLAIN (ANALYZE, BUFFERS) of its select, limit 16), clean window at ${clean.at} s:`,
  );
  console.log("```\n" + clean.server.plan + "\n```");
  console.log(
    `Costliest window (${worst.phase}, at ${worst.at} s; index ${
      formatBytes(worst.server.indexBytes)
    }, ${formatCount(worst.server.indexEntries)} entries, ${
      formatCount(worst.server.ready)
    } live; pq backends ${JSON.stringify(worst.server.backends)}):`,
  );
  console.log("```\n" + worst.server.plan + "\n```");
}
const jsonPath = option("json", "");
if (jsonPath) {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(
    jsonPath,
    JSON.stringify({
      mode,
      rate,
      phases,
      windows,
      issued,
      acked,
      failed,
      done,
      lost,
      twice,
    }),
  );
}

await producerPQ.close();
await workerPQ.close();
await producerSql.end({ timeout: 5 });
await workerSql.end({ timeout: 5 });
await scratch.drop();
await admin.end({ timeout: 5 });
process.exit(0);
