/**
 * work(): 20,000 no-op task jobs, concurrency 8, on a pre-filled queue.
 *
 * @module
 */

import { openPQ } from "../db.ts";
import { RawQueue } from "../raw.ts";
import { scaled, type Workload } from "../workload.ts";

const CONCURRENCY = 8;
const FILL_BATCH = 1_000;

function jobCount(scale: number): number {
  return scaled(20_000, scale, 1_000);
}

export const work: Workload = {
  name: "work 20,000 no-op jobs, concurrency 8",
  notes:
    "pq: work({ concurrency: 8, burst: true }); raw: 8 loops of begin; delete ... skip locked limit 1 returning; commit",
  reps: 5,
  target: { text: "≥ 2x", met: (s) => s.ratio >= 2 },
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("jobs");
      const noop = q.task("noop", (_args: { n: number }) => {});
      const n = jobCount(ctx.scale);
      for (let i = 0; i < n; i += FILL_BATCH) {
        const k = Math.min(FILL_BATCH, n - i);
        await noop.many(
          Array.from({ length: k }, (_, j) => ({ args: { n: i + j } })),
        );
      }
      const start = performance.now();
      const stats = await q.work({ concurrency: CONCURRENCY, burst: true });
      const ms = performance.now() - start;
      if (stats.done !== n) {
        throw new Error(`work() did ${stats.done} of ${n} jobs`);
      }
      return { jobs: n, ms };
    } finally {
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    const n = jobCount(ctx.scale);
    for (let i = 0; i < n; i += FILL_BATCH) {
      const k = Math.min(FILL_BATCH, n - i);
      await raw.putMany(
        "jobs",
        Array.from({ length: k }, (_, j) => ({ n: i + j })),
      );
    }
    let done = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (await raw.work("jobs", () => {})) done++;
      }),
    );
    const ms = performance.now() - start;
    if (done !== n) throw new Error(`raw loops did ${done} of ${n} jobs`);
    return { jobs: n, ms };
  },
};
