/**
 * The worker of both raw-SQL queues: `concurrency` loops that each take
 * and run one job per transaction until the queue is empty, then sleep
 * until a notification on the queue's channel wakes them all.
 *
 * @module
 */

import type { Sql } from "../../mod.ts";
import type { Worker } from "./peer.ts";

/**
 * Starts the loops; `takeOne` runs one job in a transaction of its own and
 * resolves false when there was none. Resolves once LISTEN is in place.
 */
export async function startLoops(
  sql: Sql,
  channel: string,
  concurrency: number,
  takeOne: () => Promise<boolean>,
): Promise<Worker> {
  let stopped = false;
  let wake = deferred();
  const listening = await sql.listen(channel, () => {
    const woken = wake;
    wake = deferred();
    woken.resolve();
  });
  const loop = async () => {
    while (!stopped) {
      // Taken before the query: a notification that arrives while the
      // queue looks empty still wakes this loop.
      const next = wake.promise;
      if (!await takeOne()) await next;
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    async stop() {
      stopped = true;
      wake.resolve();
      await Promise.all(loops);
      await listening.unlisten();
    },
  };
}

/** `Promise.withResolvers()`, which Node 20 lacks. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  return { promise, resolve };
}
