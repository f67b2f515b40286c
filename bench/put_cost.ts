/**
 * What one single put costs: `deno run -A bench/put_cost.ts` (about a
 * minute). One producer, sequential puts, on sides with clients of their
 * own (one connection each), each in a fresh schema:
 *
 * - `raw`: bench/raw.ts's prepared insert, no trigger (the baseline);
 * - `pq`: `queue.put()` of this working tree (OpenTelemetry as
 *   `PQ_BENCH_OTEL` says, see `otel.ts`); `pq-off`: the same with
 *   `telemetry: false`;
 * - a directory: `queue.put()` of another checkout of pq there (for
 *   example a `git worktree` of an older commit), with its own table and
 *   statements, so that a regression can be told from the machine's drift
 *   in one run.
 *
 * The sides take turns in rounds of `--round` puts (default 100), each
 * round starting with a different side, so that the load of a shared
 * machine hits them alike. Per side: jobs/s, the ratio to raw (median of
 * the per-repetition ratios), and CPU per 1,000 puts: this process's (all
 * of it runs the side whose round it is) and the side's server backend's
 * (`/proc/<pid>/schedstat`, when the server runs on this host).
 *
 * Options: `--puts=N` per side and repetition (default 2,000), `--reps=N`
 * (default 5), `--round=N`, `--sides=raw,pq,pq-off,DIR,...` (default
 * `raw,pq`).
 *
 * @module
 */

import process from "node:process";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { benchUrl, freshSchema, type Scratch } from "./db.ts";
import { otelMode } from "./otel.ts";
import { RawQueue } from "./raw.ts";
import { formatCount, formatRatio, median } from "./stats.ts";

function option(name: string, fallback: string): string {
  const prefix = `--${name}=`;
  return process.argv.find((a) => a.startsWith(prefix))?.slice(
    prefix.length,
  ) ?? fallback;
}

const PUTS = Number(option("puts", "2000"));
const REPS = Number(option("reps", "5"));
const ROUND = Number(option("round", "100"));
const SIDES = option("sides", "raw,pq").split(",");
const ROUNDS = Math.ceil(PUTS / ROUND);
/** Puts per side and repetition. */
const PER_REP = ROUNDS * ROUND;
const WARMUP = 200;
/** A side that is another checkout: a path. */
const isCheckout = (side: string) => side.includes("/");
for (const side of SIDES) {
  if (!["raw", "pq", "pq-off"].includes(side) && !isCheckout(side)) {
    throw new Error(
      `Unknown side ${side} (known: raw, pq, pq-off, or a checkout's path)`,
    );
  }
}
const url = benchUrl();
const log = (text: string) => process.stderr.write(`${text}\n`);

/** One side: its put, its backend, and what it spent so far. */
interface Side {
  name: string;
  put(i: number): Promise<unknown>;
  pid: number;
  close(): Promise<void>;
  /** Per repetition: wall ms, client CPU ms, server CPU ms. */
  reps: { ms: number; client: number; server: number }[];
}

/** CPU time of a process on this host, in ms; NaN when unreadable. */
function cpuMs(pid: number): number {
  try {
    return Number(
      readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0],
    ) /
      1e6;
  } catch {
    return NaN;
  }
}

/** The createPQ of the side: this tree's, or another checkout's. */
async function pqFactory(name: string): Promise<typeof createPQ> {
  if (!isCheckout(name)) return createPQ;
  const mod = await import(pathToFileURL(resolve(name, "mod.ts")).href);
  return mod.createPQ;
}

async function open(name: string): Promise<Side> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  let scratch: Scratch | undefined;
  try {
    scratch = await freshSchema(sql);
    const schema = scratch.schema;
    const [{ pid }] = await sql`select pg_backend_pid() as pid`;
    const side = { name, pid: pid as number, reps: [] };
    const drop = async () => {
      await scratch!.drop();
      await sql.end();
    };
    if (name === "raw") {
      const raw = await RawQueue.create(sql, schema);
      return {
        ...side,
        put: (i) => raw.put("jobs", { n: i }),
        close: drop,
      };
    }
    const create = await pqFactory(name);
    // Another checkout may predate the telemetry option: only the schema.
    const pq = isCheckout(name) ? create(sql, { schema }) : create(sql, {
      schema,
      telemetry: name === "pq" && otelMode() !== "off",
    });
    await pq.create();
    const queue = pq.queue("jobs");
    return {
      ...side,
      put: (i) => queue.put({ n: i }),
      close: async () => {
        await pq.close();
        await drop();
      },
    };
  } catch (error) {
    await scratch?.drop();
    await sql.end();
    throw error;
  }
}

const sides: Side[] = [];
try {
  for (const name of SIDES) sides.push(await open(name));
  for (const side of sides) {
    for (let i = 0; i < WARMUP; i++) await side.put(i);
  }
  let n = 0;
  for (let rep = 0; rep < REPS; rep++) {
    for (const side of sides) side.reps.push({ ms: 0, client: 0, server: 0 });
    for (let r = 0; r < ROUNDS; r++) {
      const turn = rep * ROUNDS + r;
      for (let k = 0; k < sides.length; k++) {
        const side = sides[(k + turn) % sides.length];
        const cpu0 = process.cpuUsage(), server0 = cpuMs(side.pid);
        const t0 = performance.now();
        for (let i = 0; i < ROUND; i++) await side.put(n++);
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        const now = side.reps[rep];
        now.ms += ms;
        now.client += (cpu.user + cpu.system) / 1000;
        now.server += cpuMs(side.pid) - server0;
      }
    }
    log(
      `repetition ${rep + 1}/${REPS}: ${
        sides.map((s) =>
          `${s.name} ${formatCount(PER_REP / (s.reps[rep].ms / 1000))}/s`
        ).join(", ")
      }`,
    );
  }
} finally {
  for (const side of sides) await side.close();
}

const baseline = sides.find((s) => s.name === "raw") ?? sides[0];
const [one, five, fifteen] = loadavg();
console.log(
  `single puts, ${PER_REP} per side x ${REPS} repetitions in rounds of ${ROUND}; load average ${
    one.toFixed(2)
  } ${five.toFixed(2)} ${
    fifteen.toFixed(2)
  }; OpenTelemetry (pq): ${otelMode()}`,
);
console.log();
console.log(
  "| side | jobs/s | ratio to raw | client CPU ms / 1,000 puts | server CPU ms / 1,000 puts |",
);
console.log("| ---- | -----: | -----------: | ---: | ---: |");
for (const side of sides) {
  const rate = median(side.reps.map((r) => PER_REP / (r.ms / 1000)));
  const ratio = median(side.reps.map((r, i) => baseline.reps[i].ms / r.ms));
  const client = median(side.reps.map((r) => r.client / PER_REP * 1000));
  const server = median(side.reps.map((r) => r.server / PER_REP * 1000));
  console.log(
    `| ${side.name} | ${formatCount(rate)} | ${formatRatio(ratio)} | ${
      client.toFixed(0)
    } | ${Number.isNaN(server) ? "-" : server.toFixed(0)} |`,
  );
}
