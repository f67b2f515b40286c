/**
 * A PostgreSQL primary with a streaming standby on this machine, for the
 * failover tests: two data folders, two servers on two loopback ports, a
 * physical replication slot, and synchronous or asynchronous replication.
 *
 * How the standby is made: the npm binaries (`tests/postmaster.ts`) have no
 * `pg_basebackup`, so the standby is a copy of the primary's data folder
 * taken while the primary is cleanly shut down, which PostgreSQL documents
 * as a valid base backup ("file system level backup"). It gets a
 * `standby.signal` file and `primary_conninfo` and `primary_slot_name`
 * settings, which is what `pg_basebackup -R` writes. The slot is created on
 * the primary before the copy, so no WAL the standby needs is recycled.
 *
 * Synchronous mode: the primary has `synchronous_commit = on` and the
 * standby in `synchronous_standby_names`, so a commit returns only once the
 * standby has flushed its WAL. The standby runs without
 * `synchronous_standby_names`, so once promoted it commits on its own.
 * Asynchronous mode: `synchronous_standby_names` is empty, and a commit
 * returns before the standby has its WAL.
 *
 * @module
 */

import { execFile } from "node:child_process";
import { chown, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import postgres from "postgres";
import {
  defaultMajor,
  freePort,
  initdb,
  makeFolder,
  Postmaster,
  removeFolder,
  serverOwner,
} from "../postmaster.ts";
import { waitFor } from "./_fault.ts";

/** The standby's name: its application_name and its slot's name. */
const STANDBY = "pq_standby";
const PASSWORD = "pq";

/** Settings of {@linkcode startReplicatedPair}. */
export interface ReplicationOptions {
  /** PostgreSQL major (default: `PQ_PG_MAJOR`, else 18). */
  major?: number;
  /** Synchronous replication (the standby in synchronous_standby_names). */
  synchronous: boolean;
}

/** A running primary and standby; see {@linkcode startReplicatedPair}. */
export interface ReplicatedPair {
  /** The major version, e.g. "16". */
  readonly version: string;
  /** The primary alone. */
  readonly primaryUrl: string;
  /** The standby alone. */
  readonly standbyUrl: string;
  /**
   * Both servers, primary first, for clients that must find the writable
   * one by themselves: `postgres://...@127.0.0.1:P1,127.0.0.1:P2/postgres`
   * followed by `?target_session_attrs=<attrs>`.
   */
  multiHostUrl(attrs: string): string;
  /** SIGKILL to the primary and all its processes; waits until gone. */
  killPrimary(): Promise<void>;
  /** Promotes the standby (`pg_promote()`); resolves once it is writable. */
  promote(): Promise<void>;
  /** Stops both servers and removes their folders. Safe to call twice. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts a primary and a standby that streams from it, and waits until the
 * standby is streaming (and, in synchronous mode, counted as synchronous).
 *
 * @throws {Error} When a server does not start or replication does not
 *   begin within a minute; both servers and the folder are removed then.
 */
export async function startReplicatedPair(
  options: ReplicationOptions,
): Promise<ReplicatedPair> {
  const major = options.major ?? defaultMajor();
  const folder = await makeFolder();
  const primaryDir = join(folder, "primary");
  const standbyDir = join(folder, "standby");
  const servers: Postmaster[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= (async () => {
      try {
        // Their data is thrown away: no need for a clean shutdown.
        await Promise.all(servers.map((s) => s.stop("immediate")));
      } finally {
        await removeFolder(folder);
      }
    })();
  const url = (port: number) =>
    `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;

  try {
    const [primaryPort, standbyPort] = [await freePort(), await freePort()];
    await initdb(major, primaryDir, PASSWORD);
    const primarySettings = {
      wal_level: "replica",
      max_wal_senders: 5,
      max_replication_slots: 5,
      synchronous_commit: "on",
      synchronous_standby_names: options.synchronous ? STANDBY : "",
    };
    const startPrimary = () =>
      Postmaster.start({
        major,
        dataDir: primaryDir,
        port: primaryPort,
        settings: primarySettings,
        label: "primary",
      });

    // The slot first, then a clean shutdown, then the copy.
    let primary = await startPrimary();
    servers.push(primary);
    await withClient(
      url(primaryPort),
      (sql) =>
        sql`select pg_create_physical_replication_slot(${STANDBY}, true)`,
    );
    await primary.stop("fast");
    servers.pop();
    await copyDataDir(primaryDir, standbyDir);

    primary = await startPrimary();
    servers.push(primary);
    const standby = await Postmaster.start({
      major,
      dataDir: standbyDir,
      port: standbyPort,
      settings: {
        hot_standby: "on",
        primary_conninfo: `host=127.0.0.1 port=${primaryPort} user=postgres ` +
          `password=${PASSWORD} application_name=${STANDBY}`,
        primary_slot_name: STANDBY,
      },
      label: "standby",
    });
    servers.push(standby);

    await withClient(url(primaryPort), (sql) =>
      waitFor(
        async () => {
          const [row] = await sql`select state, sync_state
            from pg_stat_replication where application_name = ${STANDBY}`;
          return row?.state === "streaming" &&
            (!options.synchronous || row.sync_state === "sync");
        },
        "the standby to stream from the primary",
        60_000,
        50,
      ));

    const version = (await readFile(join(primaryDir, "PG_VERSION"), "utf8"))
      .trim();
    return {
      version,
      primaryUrl: url(primaryPort),
      standbyUrl: url(standbyPort),
      multiHostUrl: (attrs) =>
        `postgres://postgres:${PASSWORD}@127.0.0.1:${primaryPort},` +
        `127.0.0.1:${standbyPort}/postgres?target_session_attrs=${attrs}`,
      async killPrimary() {
        primary.kill();
        await primary.exited;
      },
      async promote() {
        await withClient(url(standbyPort), async (sql) => {
          const [{ promoted }] = await sql`select pg_promote(true, 60)
            as promoted`;
          if (!promoted) throw new Error("pg_promote() returned false");
        });
      },
      stop,
      [Symbol.asyncDispose]: stop,
    };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
}

/** Runs `fn` with a one-connection client to `url`, then ends it. */
export async function withClient<T>(
  url: string,
  fn: (sql: postgres.Sql) => Promise<T>,
): Promise<T> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * Copies a cleanly shut down data folder into a new standby's: `cp -a`
 * keeps the owner and modes the server insists on. The primary's slot
 * stays behind (a standby keeps its own), and `standby.signal` makes the
 * copy start as a standby.
 */
async function copyDataDir(from: string, to: string): Promise<void> {
  await promisify(execFile)("cp", ["-a", from, to]);
  await rm(join(to, "pg_replslot", STANDBY), { recursive: true, force: true });
  await rm(join(to, "postmaster.pid"), { force: true });
  await writeFile(join(to, "standby.signal"), "");
  const { uid, gid } = serverOwner();
  if (uid !== undefined) await chown(join(to, "standby.signal"), uid, gid!);
}
