/**
 * The test launcher behind `deno task test`.
 *
 * ```sh
 * deno run -A tests/run.ts [deno|node|bun|all] [--embedded] [--pg=14,15,...]
 *   [--fault] [paths...]
 * ```
 *
 * - The runtime defaults to `deno`; `all` runs deno, then node, then bun, and
 *   goes on after a failure so that one run shows every runtime's result.
 * - The server is `DATABASE_URL`. When that is not set, or `--embedded` is
 *   given, a throwaway PostgreSQL 18 (see `tests/embedded_pg.ts`) is started
 *   for the run and stopped afterwards, also on failure, SIGINT or SIGTERM.
 * - `--pg=16` runs on a throwaway PostgreSQL 16 instead, whatever
 *   `DATABASE_URL` says; `--pg=14,15,16,17,18` (or `--pg=all`) runs the whole
 *   selection once per major, one server after the other, goes on after a
 *   failure, and prints each version's result and time at the end. Tests
 *   that start servers of their own (`tests/fault`) get the same major
 *   through `PQ_PG_MAJOR`.
 * - The files are `tests/*_test.ts` in name order, plus `tests/fault/*_test.ts`
 *   with `--fault`. Paths given on the command line (files, or folders whose
 *   `*_test.ts` files to take) replace that list.
 * - Each runtime runs as a child process with inherited stdio, one test file
 *   at a time. The exit code is the first non-zero one of the children.
 *
 * @module
 */
import process from "node:process";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { constants } from "node:os";
import { join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./embedded_pg.ts";
import { defaultMajor, parseMajor, PG_MAJORS } from "./postmaster.ts";

type Runtime = "deno" | "node" | "bun";
type StopSignal = "SIGINT" | "SIGTERM";

const RUNTIMES: readonly Runtime[] = ["deno", "node", "bun"];
const INSTALL_RUNTIMES = "npm i -g deno@2 bun@1";
const USAGE = "Usage: deno run -A tests/run.ts [deno|node|bun|all] " +
  "[--embedded] [--pg=14,15,16,17,18|all] [--fault] [paths...]";
/** How long a child may take to stop after a signal before it is killed. */
const KILL_AFTER_MS = 10_000;

/** The repository root: tests run from here, file paths are relative to it. */
const root = fileURLToPath(new URL("..", import.meta.url));

interface Options {
  runtimes: Runtime[];
  embedded: boolean;
  /** Majors to run on, each on a throwaway server (empty: see `embedded`). */
  majors: number[];
  fault: boolean;
  paths: string[];
}

/** The command line that runs `files` (relative to the root) on `runtime`. */
function commandFor(runtime: Runtime, files: string[]): string[] {
  switch (runtime) {
    case "deno":
      return ["deno", "test", "-A", "--no-check=remote", ...files];
    case "node":
      return [
        "node",
        ...["--import", "tsx", "--test", "--test-concurrency=1"],
        ...files,
      ];
    case "bun":
      // Without "./" bun would take the arguments as name filters.
      return [
        "bun",
        ...["test", "--timeout", "120000"],
        ...files.map((file) => `./${file}`),
      ];
  }
}

let interrupted: StopSignal | undefined;
let stopChild: ((signal: StopSignal | "SIGKILL") => void) | undefined;

function onSignal(signal: StopSignal): void {
  if (interrupted) {
    stopChild?.("SIGKILL");
    return;
  }
  interrupted = signal;
  console.error(`\npq tests: ${signal} received, stopping`);
  stopChild?.(signal);
}

async function main(args: string[]): Promise<number> {
  const options = parseArgs(args);
  if (typeof options === "string") {
    console.error(`pq tests: ${options}\n${USAGE}`);
    return 2;
  }

  const versions = new Map<Runtime, string>();
  for (const runtime of options.runtimes) {
    const probe = spawnSync(runtime, ["--version"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) {
      console.error(
        `pq tests: cannot run \`${runtime} --version\` ` +
          `(${probe.error?.message ?? `exit code ${probe.status}`}). ` +
          `Install the runtimes with: ${INSTALL_RUNTIMES}`,
      );
      return 1;
    }
    const version = /\d+\.\d+\.\d+\S*/.exec(probe.stdout)?.[0] ?? "?";
    versions.set(runtime, `${runtime} ${version}`);
  }
  if (!existsSync(join(root, "node_modules", "postgres"))) {
    console.error(
      "pq tests: node_modules is missing or incomplete. Run `deno task install`.",
    );
    return 1;
  }
  const files = options.paths.length > 0
    ? filesFromPaths(options.paths)
    : defaultFiles(options.fault);
  if (typeof files === "string") {
    console.error(`pq tests: ${files}`);
    return 2;
  }
  if (files.length === 0) {
    console.error("pq tests: no test files found");
    return 1;
  }

  // One pass per server: each major asked for, else DATABASE_URL or one
  // throwaway server of the default major.
  const url = process.env.DATABASE_URL;
  const majors: (number | null)[] = options.majors.length > 0
    ? options.majors
    : [options.embedded || !url ? defaultMajor() : null];
  const results: string[] = [];
  let exitCode = 0;
  for (const major of majors) {
    if (interrupted) break;
    const code = await onServer(major, url, options, files, versions, results)
      .catch((error) => {
        // A server that does not start fails its pass, not the others.
        console.error(`pq tests: PostgreSQL ${major}:`, error);
        results.push(`PostgreSQL ${major} FAILED to start`);
        return 1;
      });
    if (exitCode === 0) exitCode = code;
  }
  if (results.length > 1) {
    console.log(`\npq tests:\n${results.map((r) => `  ${r}`).join("\n")}`);
  }
  if (interrupted) return 128 + constants.signals[interrupted];
  return exitCode;
}

/**
 * Runs the files on each runtime against one server: a throwaway one of
 * `major`, or `url` when `major` is null. Adds a line per runtime to
 * `results`; returns the first non-zero exit code.
 */
async function onServer(
  major: number | null,
  url: string | undefined,
  options: Options,
  files: string[],
  versions: Map<Runtime, string>,
  results: string[],
): Promise<number> {
  let server: EmbeddedPostgres | undefined;
  const env: Record<string, string | undefined> = { ...process.env };
  try {
    if (major !== null) {
      const started = performance.now();
      server = await startEmbeddedPostgres({ major });
      url = server.url;
      // Tests that start servers of their own start this major too.
      env.PQ_PG_MAJOR = String(major);
      console.log(
        `pq tests: embedded PostgreSQL ${server.version} at ${where(url)}, ` +
          `started in ${seconds(started)}`,
      );
    }
    env.DATABASE_URL = url;
    const label = major === null ? "" : ` on PostgreSQL ${major}`;
    let exitCode = 0;
    for (const runtime of options.runtimes) {
      if (interrupted) break;
      console.log(
        `\n=== pq tests on ${versions.get(runtime)}: ${files.length} ` +
          `file(s), PostgreSQL at ${where(url!)} ===`,
      );
      const started = performance.now();
      const code = await run(commandFor(runtime, files), env);
      const outcome = code === 0 ? "passed" : `FAILED (exit code ${code})`;
      results.push(`${runtime}${label} ${outcome} in ${seconds(started)}`);
      console.log(`=== ${results.at(-1)} ===`);
      if (exitCode === 0) exitCode = code;
    }
    return exitCode;
  } finally {
    if (server) {
      const stopping = performance.now();
      await server.stop();
      console.log(
        `pq tests: embedded PostgreSQL stopped in ${seconds(stopping)}`,
      );
    }
  }
}

function parseArgs(args: string[]): Options | string {
  const options: Options = {
    runtimes: [],
    embedded: false,
    majors: [],
    fault: false,
    paths: [],
  };
  for (const arg of args) {
    if (arg === "--embedded") options.embedded = true;
    else if (arg.startsWith("--pg=")) {
      const list = arg.slice("--pg=".length);
      try {
        const majors = list === "all"
          ? [...PG_MAJORS]
          : list.split(",").map((m) => parseMajor(m.trim()));
        options.majors.push(
          ...majors.filter((m) => !options.majors.includes(m)),
        );
      } catch (error) {
        return (error as Error).message;
      }
    } else if (arg === "--fault") options.fault = true;
    else if (arg === "all") options.runtimes = [...RUNTIMES];
    else if ((RUNTIMES as readonly string[]).includes(arg)) {
      options.runtimes = [arg as Runtime];
    } else if (arg.startsWith("-")) return `unknown option: ${arg}`;
    else options.paths.push(arg);
  }
  if (options.runtimes.length === 0) options.runtimes = ["deno"];
  return options;
}

/** `tests/*_test.ts`, then `tests/fault/*_test.ts` if asked, by name. */
function defaultFiles(fault: boolean): string[] {
  const folders = fault ? ["tests", "tests/fault"] : ["tests"];
  return folders.flatMap((folder) =>
    existsSync(join(root, folder)) ? testsIn(folder) : []
  );
}

/** The given files, or the `*_test.ts` files of the given folders. */
function filesFromPaths(paths: string[]): string[] | string {
  const files: string[] = [];
  for (const path of paths) {
    // `deno task` runs from the root; INIT_CWD is where it was called from.
    const absolute = resolve(process.env.INIT_CWD ?? process.cwd(), path);
    if (!existsSync(absolute)) return `no such file or folder: ${path}`;
    const fromRoot = relative(root, absolute).split(sep).join("/");
    if (statSync(absolute).isDirectory()) files.push(...testsIn(fromRoot));
    else files.push(fromRoot);
  }
  return files;
}

function testsIn(folder: string): string[] {
  return readdirSync(join(root, folder))
    .filter((name) => name.endsWith("_test.ts"))
    .sort()
    .map((name) => `${folder}/${name}`);
}

/** Runs a command from the root with inherited stdio; resolves its code. */
function run(
  [command, ...args]: string[],
  env: Record<string, string | undefined>,
): Promise<number> {
  return new Promise((done) => {
    const child = spawn(command, args, { cwd: root, env, stdio: "inherit" });
    let killTimer: ReturnType<typeof setTimeout> | undefined;
    stopChild = (signal) => {
      child.kill(signal);
      killTimer ??= setTimeout(() => child.kill("SIGKILL"), KILL_AFTER_MS);
    };
    const finish = (code: number) => {
      stopChild = undefined;
      clearTimeout(killTimer);
      done(code);
    };
    child.on("error", (error) => {
      console.error(`pq tests: cannot run ${command}: ${error.message}`);
      finish(127);
    });
    child.on("close", (code, signal) => {
      finish(code ?? 128 + (signal ? constants.signals[signal] : 0));
    });
  });
}

/** `host:port/database` of a connection string, without the password. */
function where(url: string): string {
  try {
    const { host, pathname } = new URL(url);
    return `${host}${pathname}`;
  } catch {
    return "DATABASE_URL";
  }
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)}s`;
}

process.on("SIGINT", () => onSignal("SIGINT"));
process.on("SIGTERM", () => onSignal("SIGTERM"));
process.exit(
  await main(process.argv.slice(2)).catch((error) => {
    console.error("pq tests:", error);
    return 1;
  }),
);
