/**
 * graphile-worker, with the calls its docs give for speed: `addJob()` for
 * one job and `addJobs()` (the `add_jobs` SQL function) for many, both on
 * one WorkerUtils pool; `run()` with `concurrency`, and the batching its
 * Performance page uses for its figures (a local queue of 500 fetched jobs,
 * completions batched with `completeJobBatchDelay: 0`). Its logger is
 * silenced; everything else is left at its defaults.
 *
 * Type-checked by `deno task check:peers`, not `deno task check`: it needs
 * bench/peers/node_modules (see bench/peers/README.md).
 *
 * @module
 */

import { Logger, makeWorkerUtils, run } from "graphile-worker";
import pg from "pg";
import type { OpenPeer, Payload } from "../peer.ts";

const TASK = "noop";
const silent = new Logger(() => () => {});

export const open: OpenPeer = async ({ url, schema }) => {
  const utils = await makeWorkerUtils({
    connectionString: url,
    schema,
    logger: silent,
  });
  await utils.migrate();
  const pools: pg.Pool[] = [];
  return {
    put: (data) => utils.addJob(TASK, data),
    putMany: (data) =>
      utils.addJobs(data.map((payload) => ({ identifier: TASK, payload }))),
    async work(concurrency, handler) {
      // The runner's pool is ours, not one run() makes and ends on stop():
      // its backends must outlive the worker for their CPU time to be read.
      // 10 connections, as run() would make.
      const pool = new pg.Pool({ connectionString: url, max: 10 });
      // Both handlers graphile-worker asks of a pool it is given.
      const report = (error: Error) => console.error("graphile-worker:", error);
      pool.on("error", report);
      pool.on("connect", (client) => client.on("error", report));
      pools.push(pool);
      const runner = await run({
        pgPool: pool,
        schema,
        concurrency,
        logger: silent,
        noHandleSignals: true,
        taskList: { [TASK]: (payload) => handler(payload as Payload) },
        preset: {
          worker: {
            localQueue: { size: 500 },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      });
      return { stop: () => runner.stop() };
    },
    pending: () =>
      utils.withPgClient(async (client) => {
        const { rows } = await client.query(
          `select count(*)::int as n from ${quote(schema)}._private_jobs`,
        );
        return rows[0].n as number;
      }),
    async close() {
      await utils.release();
      for (const pool of pools) await pool.end();
    },
  };
};

/** node-postgres takes SQL text; the schema is ours, quoted here. */
function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
