/**
 * get loop: 8 consumers calling plain `get()` on a pre-filled queue, each
 * get outside a transaction (the job is gone when the statement commits).
 *
 * @module
 */

import { openPQ } from "../db.ts";
import { RawQueue } from "../raw.ts";
import { scaled, timedLoops, type Workload } from "../workload.ts";

const CONSUMERS = 8;
const FILL_BATCH = 1_000;

function jobCount(scale: number): number {
  return scaled(20_000, scale, 1_000);
}

function fill(n: number, put: (data: { n: number }[]) => Promise<unknown>) {
  return (async () => {
    for (let i = 0; i < n; i += FILL_BATCH) {
      const k = Math.min(FILL_BATCH, n - i);
      await put(Array.from({ length: k }, (_, j) => ({ n: i + j })));
    }
  })();
}

export const getLoop: Workload = {
  name: "get loop, 8 consumers",
  notes:
    "plain get(); raw: 8 loops of delete ... skip locked limit 1 returning",
  reps: 5,
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("jobs");
      const n = jobCount(ctx.scale);
      await fill(n, (data) => q.putMany(data.map((d) => ({ data: d }))));
      // Exactly n gets, so that none waits on an empty queue.
      return await timedLoops(n, CONSUMERS, async () => {
        if (!await q.get()) throw new Error("get() found no job");
      });
    } finally {
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    const n = jobCount(ctx.scale);
    await fill(n, (data) => raw.putMany("jobs", data));
    return await timedLoops(n, CONSUMERS, async () => {
      if (!await raw.take("jobs")) throw new Error("raw take found no job");
    });
  },
};
