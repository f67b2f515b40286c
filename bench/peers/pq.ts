/**
 * pq, imported from this working tree (../../mod.ts), on a postgres.js
 * client of its own: a task's call to put, `task.many` for bulk, and
 * `queue.work({ concurrency })` with its default batch size, in transaction
 * mode (`./pq_lease.ts` runs the same task in lease mode).
 *
 * @module
 */

import postgres from "postgres";
import { createPQ, type TaskOptions } from "../../mod.ts";
import type { OpenPeer, Payload } from "./peer.ts";

/** pq with the noop task registered with `options`. */
export function openPq(options: TaskOptions = {}): OpenPeer {
  return async ({ url, schema }) => {
    const sql = postgres(url, { max: 10, onnotice: () => {} });
    const pq = createPQ(sql, { schema });
    await pq.create();
    const queue = pq.queue("jobs");
    let run: (data: Payload) => void = () => {
      throw new Error("pq: no worker is running");
    };
    // Jobs of a task, as the other peers' jobs are: the same row a worker
    // takes, with the task's name set.
    const noop = queue.task("noop", (args: Payload) => run(args), options);
    return {
      put: (data) => noop(data),
      putMany: (data) => noop.many(data.map((args) => ({ args }))),
      work(concurrency, handler) {
        run = handler;
        const stop = new AbortController();
        const working = queue.work({ concurrency, signal: stop.signal });
        return Promise.resolve({
          async stop() {
            stop.abort();
            await working;
          },
        });
      },
      pending: () => queue.size(),
      async close() {
        await pq.close();
        await sql.end();
      },
    };
  };
}

export const open: OpenPeer = openPq();
