/**
 * Starts and stops a real PgBouncer in transaction mode in front of the test
 * server, for the pooler tests.
 *
 * PgBouncer comes from Debian's `pgbouncer` package (`.ci/run` installs it;
 * `PGBOUNCER` may name another binary). It refuses to run as root, so as root
 * it runs as the `postgres` system user (through `setpriv`), with its
 * configuration in a temporary folder that user can read. It listens on a
 * free port of 127.0.0.1 only (no Unix socket), trusts its clients, and logs
 * in to the server with the user and password of the test server's URL. That
 * user may also use PgBouncer's admin console (database `pgbouncer`, simple
 * queries only: `SHOW POOLS`, `SHOW SERVERS`, `SHOW STATS`).
 *
 * @example Run statements through PgBouncer
 * ```ts ignore
 * const bouncer = await startPgBouncer(databaseUrl());
 * if (typeof bouncer === "string") console.log(`skipped: ${bouncer}`);
 * else {
 *   const sql = postgres(bouncer.url, { prepare: false });
 *   await sql`select 1`;
 *   await sql.end();
 *   await bouncer.stop();
 * }
 * ```
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import { tmpdir, userInfo } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";

/** A running PgBouncer; see {@linkcode startPgBouncer}. */
export interface PgBouncer {
  /** The test server's URL with PgBouncer's host and port. */
  readonly url: string;
  /** PgBouncer's port on 127.0.0.1. */
  readonly port: number;
  /** The PgBouncer version line, e.g. "PgBouncer 1.18.0". */
  readonly version: string;
  /** Stops PgBouncer and removes its folder. Safe to call twice. */
  stop(): Promise<void>;
  /** Same as `stop()`, for `await using`. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What to do when PgBouncer is not installed. */
export const INSTALL_HINT = "apt-get install -y pgbouncer";

/** The PgBouncer binary: `PGBOUNCER`, then PATH, then /usr/sbin. */
export function findPgBouncer(): string | null {
  const named = process.env.PGBOUNCER;
  if (named) return existsSync(named) ? named : null;
  const dirs = [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/sbin",
    "/usr/local/sbin",
  ];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, "pgbouncer"))) {
      return join(dir, "pgbouncer");
    }
  }
  return null;
}

/**
 * Starts PgBouncer with `pool_mode = transaction` in front of the server of
 * `databaseUrl`.
 *
 * @param databaseUrl The server, as a `postgres://` URL with user and
 * (optionally) password.
 * @param options `poolSize`: server connections per user and database
 * (default 20); `maxClientConn`: client connections PgBouncer accepts
 * (default 500).
 * @returns The running PgBouncer, or why it cannot run here (not installed,
 * no unprivileged user, did not start), for the tests to skip with.
 */
export async function startPgBouncer(
  databaseUrl: string,
  options: { poolSize?: number; maxClientConn?: number } = {},
): Promise<PgBouncer | string> {
  const binary = findPgBouncer();
  if (!binary) {
    return `PgBouncer is not installed (install it with: ${INSTALL_HINT})`;
  }
  const version = spawnSync(binary, ["--version"], { encoding: "utf8" })
    .stdout?.split("\n")[0] ?? "PgBouncer";
  let command = binary;
  let args: string[] = [];
  if (userInfo().uid === 0) {
    // PgBouncer will not run as root: drop to the postgres system user.
    const user = ["postgres", "nobody"].find((name) =>
      spawnSync("id", ["-u", name]).status === 0
    );
    if (!user) return "PgBouncer refuses root and no postgres user exists";
    command = "setpriv";
    args = [`--reuid=${user}`, `--regid=${user}`, "--clear-groups", binary];
  }

  const server = new URL(databaseUrl);
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "pq-pgbouncer-"));
  chmodSync(dir, 0o755);
  const user = decodeURIComponent(server.username) || userInfo().username;
  const password = decodeURIComponent(server.password);
  const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
  writeFile(join(dir, "userlist.txt"), `${quote(user)} ${quote(password)}\n`);
  const ini = join(dir, "pgbouncer.ini");
  writeFile(
    ini,
    [
      "[databases]",
      `* = host=${server.hostname || "127.0.0.1"} port=${server.port || 5432}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = trust",
      `auth_file = ${join(dir, "userlist.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${options.poolSize ?? 20}`,
      `max_client_conn = ${options.maxClientConn ?? 500}`,
      `admin_users = ${user}`,
      "ignore_startup_parameters = extra_float_digits, options",
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
  );

  const child = spawn(command, [...args, ini], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    log = (log + chunk).slice(-4_000);
  });
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await kill(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };

  const error = await waitForPort(port, child, 10_000);
  if (error) {
    await stop();
    return `PgBouncer did not start (${error}): ${log.trim() || "no output"}`;
  }
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(port);
  return {
    url: url.href,
    port,
    version,
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

function writeFile(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o644);
}

/** A port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** Waits until `port` accepts; returns why not, or null when it does. */
async function waitForPort(
  port: number,
  child: ChildProcess,
  timeoutMs: number,
): Promise<string | null> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      return `it exited with ${child.exitCode ?? child.signalCode}`;
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => {
        socket.destroy();
        resolve(false);
      });
    });
    if (open) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return `port ${port} did not open in ${timeoutMs} ms`;
}

/** SIGTERM (PgBouncer's immediate shutdown), SIGKILL after 3 s. */
async function kill(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    exited,
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        child.kill("SIGKILL");
        resolve();
      }, 3_000);
    }),
  ]);
  clearTimeout(timer);
  await exited;
}
