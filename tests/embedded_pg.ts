/**
 * A throwaway PostgreSQL server for tests, of any supported major version
 * (14 to 18), from the binaries on npm (see `tests/postmaster.ts`).
 *
 * Each call makes a fresh temporary folder, runs `initdb` and `postgres` in
 * it on a free loopback port, and `stop()` removes the folder again. Works
 * the same when the caller runs on Deno (`deno run -A`), Node or Bun. If the
 * caller exits without `stop()`, the server gets a fast shutdown and the
 * folder is left behind. Signals are the caller's business (see
 * `tests/run.ts`).
 *
 * Set `PQ_DEBUG_PG=1` to see the server's log on stderr.
 *
 * @example
 * ```ts ignore
 * const pg = await startEmbeddedPostgres({ major: 16 });
 * try {
 *   // connect to pg.url
 * } finally {
 *   await pg.stop();
 * }
 * ```
 *
 * @module
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import {
  defaultMajor,
  freePort,
  initdb,
  makeFolder,
  Postmaster,
  removeFolder,
} from "./postmaster.ts";

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

/** Options of {@linkcode startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** The major version, 14 to 18 (default: `PQ_PG_MAJOR`, else 18). */
  major?: number;
}

/** Options of {@linkcode EmbeddedPostgres.restart}. */
export interface RestartOptions {
  /** Stop as in a crash (SIGQUIT) instead of a fast shutdown (SIGINT). */
  immediate?: boolean;
  /** Milliseconds the server stays down. */
  downMs?: number;
}

/** The superuser's password: the server asks for one, as real ones do. */
const PASSWORD = "pq";

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
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions = {},
): Promise<EmbeddedPostgres> {
  const major = options.major ?? defaultMajor();
  const folder = await makeFolder();
  const dataDir = join(folder, "data");
  let server: Postmaster | undefined;
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= (async () => {
      try {
        await server?.stop("fast");
      } finally {
        await removeFolder(folder);
      }
    })();

  try {
    const port = await freePort();
    await initdb(major, dataDir, PASSWORD);
    const start = () => Postmaster.start({ major, dataDir, port });
    server = await start();

    const restart = async (options: RestartOptions = {}): Promise<void> => {
      if (!server?.running || stopped) {
        throw new Error(
          "Cannot restart the embedded PostgreSQL: it is not running",
        );
      }
      await server.stop(options.immediate ? "immediate" : "fast");
      await new Promise((resolve) => setTimeout(resolve, options.downMs ?? 0));
      server = await start();
    };

    const version = (await readFile(join(dataDir, "PG_VERSION"), "utf8"))
      .trim();
    const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
    return { url, version, restart, stop, [Symbol.asyncDispose]: stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}
