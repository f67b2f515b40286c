/**
 * `deno task bench:peers`: pq side by side with pg-boss, graphile-worker,
 * the minimal queue users write by hand, and pq's own raw baseline
 * (../raw.ts), on the same machine in the same run. Each run of a workload
 * on a system is a Node process of its own (./child.ts) with a fresh
 * schema; the systems take turns within each repetition, starting with a
 * different one each time, so drift on a shared machine hits all alike.
 *
 * Options: `--reps=N` (or `--reps N`; default 3), `--quick` (one
 * repetition at 1/20 of the sizes, for CI), `--busy` (two CPU-bound
 * processes run beside it), `--only=a,b` (workloads: put1, put8, bulk,
 * work, latency), `--systems=a,b` (pq, pqlease, pgboss, graphile, raw, rawpq).
 * The server comes from `DATABASE_URL` (default
 * `postgres://root@127.0.0.1:5432/test`).
 *
 * @module
 */

import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus } from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { benchUrl, connect, freshSchema } from "../db.ts";
import { percentile } from "../stats.ts";
import { startBusy } from "./busy.ts";
import { installPeers, peerVersion } from "./install.ts";
import { type Results, table } from "./report.ts";
import { RESULT, type Spec } from "./spec.ts";
import { BASELINE, type System, SYSTEMS } from "./systems.ts";
import { type RunResult, WORKLOADS } from "./workloads.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const USAGE =
  "Options: --reps=N, --quick, --busy, --only=put1,put8,bulk,work,latency, --systems=pq,pqlease,pgboss,graphile,raw,rawpq";

interface Options {
  reps: number;
  quick: boolean;
  busy: boolean;
  workloads: string[];
  systems: System[];
}

function parse(args: string[]): Options {
  const options: Options = {
    reps: 3,
    quick: false,
    busy: false,
    workloads: WORKLOADS.map((w) => w.id),
    systems: [...SYSTEMS],
  };
  let reps: string | undefined;
  for (let k = 0; k < args.length; k++) {
    const [name, value] = args[k].split(/=(.*)/s, 2);
    const list = (known: string[]) => {
      const picked = (value ?? "").split(",");
      const unknown = picked.filter((p) => !known.includes(p));
      if (unknown.length) fail(`Unknown in ${name}: ${unknown.join(", ")}`);
      return picked;
    };
    if (name === "--quick") options.quick = true;
    else if (name === "--busy") options.busy = true;
    else if (name === "--reps") reps = value ?? args[++k];
    else if (name === "--only") {
      options.workloads = list(WORKLOADS.map((w) => w.id));
    } else if (name === "--systems") {
      const ids = list(SYSTEMS.map((s) => s.id));
      options.systems = SYSTEMS.filter((s) => ids.includes(s.id));
    } else fail(`Unknown argument: ${args[k]}`);
  }
  if (reps !== undefined) {
    options.reps = Number(reps);
    if (!Number.isInteger(options.reps) || options.reps < 1) {
      fail(`--reps must be a whole number of at least 1: received "${reps}"`);
    }
  } else if (options.quick) options.reps = 1;
  return options;
}

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

const log = (text: string) => process.stderr.write(`${text}\n`);

/** Runs one child and returns its result; its stderr passes through. */
function runChild(spec: Spec): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      "node",
      ["--import", "tsx", "bench/peers/child.ts", JSON.stringify(spec)],
      { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => out += chunk);
    child.on("error", reject);
    child.on("close", (code) => {
      const line = out.split("\n").find((l) => l.startsWith(RESULT));
      if (code === 0 && line) {
        resolve(JSON.parse(line.slice(RESULT.length)) as RunResult);
      } else {
        reject(
          new Error(
            `${spec.system} ${spec.workload} exited with ${code}:\n${out}`,
          ),
        );
      }
    });
  });
}

/** `systems` starting at the `rep`-th, wrapping around. */
function rotate<T>(items: readonly T[], rep: number): T[] {
  const k = rep % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** The first three fields of /proc/loadavg. */
function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(
    " ",
  );
}

/** The lines above the table: what ran where. */
async function describeRun(
  sql: ReturnType<typeof connect>,
  options: Options,
  seconds: number,
  loadBefore: string,
): Promise<string[]> {
  const [pg] = await sql`
    select version() as version,
      current_setting('synchronous_commit') as sync,
      current_setting('autovacuum') as autovacuum`;
  const model = /^model name\s*:\s*(.*)$/m.exec(
    readFileSync("/proc/cpuinfo", "utf8"),
  )?.[1] ?? "unknown CPU";
  const node = spawnSync("node", ["--version"], { encoding: "utf8" }).stdout
    .trim();
  const postgresJs = JSON.parse(
    readFileSync(`${ROOT}/node_modules/postgres/package.json`, "utf8"),
  ).version;
  const peers = options.systems.filter((s) => s.npm).map((s) =>
    `${s.npm} ${peerVersion(s.npm!)}`
  );
  return [
    `pq side by side, ${options.quick ? "quick" : "full"} run: ${
      new Date().toISOString().slice(0, 16).replace("T", " ")
    } UTC, ${Math.round(seconds)} s, ${options.reps} repetition(s)${
      options.busy ? ", 2 CPU-bound processes beside it (--busy)" : ""
    }`,
    `- machine: ${cpus().length} CPUs (${model}); ${pg.version}; synchronous_commit ${pg.sync}, autovacuum ${pg.autovacuum}`,
    // The machine is shared: say how busy it was.
    `- load average (1, 5, 15 min) at the start: ${loadBefore}; at the end: ${loadAverage()}`,
    `- clients on Node ${node}: pq from this working tree and raw SQL on postgres.js ${postgresJs}; ${
      peers.join(", ")
    }`,
    "- cells: median (min–max) and the median of per-repetition ratios to raw minimal; for latency and CPU lower is better",
  ];
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  installPeers();
  const url = benchUrl();
  const sql = connect(url, 2);
  const stopBusy = options.busy ? startBusy(2) : () => {};
  const results: Results = new Map();
  const loadBefore = loadAverage();
  const began = performance.now();
  try {
    for (const workload of WORKLOADS) {
      if (!options.workloads.includes(workload.id)) continue;
      const bySystem = new Map(
        options.systems.map((s) => [s.id, [] as RunResult[]]),
      );
      results.set(workload.id, bySystem);
      for (let rep = 0; rep < options.reps; rep++) {
        for (const system of rotate(options.systems, rep)) {
          if (system.workloads && !system.workloads.includes(workload.id)) {
            continue;
          }
          const scratch = await freshSchema(sql);
          const t0 = performance.now();
          try {
            const result = await runChild({
              system: system.id,
              workload: workload.id,
              url,
              schema: scratch.schema,
              scale: options.quick ? 1 / 20 : 1,
            });
            bySystem.get(system.id)!.push(result);
            const figure = result.latencies
              ? `p50 ${percentile(result.latencies, 50).toFixed(2)} ms`
              : `${Math.round(result.jobs / (result.ms / 1000))} jobs/s`;
            log(
              `${workload.id} [${system.id} ${
                rep + 1
              }/${options.reps}]: ${figure} (${
                ((performance.now() - t0) / 1000).toFixed(1)
              } s)`,
            );
          } finally {
            await scratch.drop();
          }
        }
      }
    }
    const header = await describeRun(
      sql,
      options,
      (performance.now() - began) / 1000,
      loadBefore,
    );
    console.log(header.join("\n"));
    console.log();
    console.log(table(results, options.systems));
    if (!options.systems.some((s) => s.id === BASELINE)) {
      console.log("\n(no ratios: raw minimal did not run)");
    }
  } finally {
    stopBusy();
    await sql.end();
  }
}

await main();
