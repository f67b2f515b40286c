/**
 * work() in lease mode: 20,000 no-op lease jobs, concurrency 8, against raw
 * SQL's transaction per job (the same baseline as `work`).
 *
 * @module
 */

import { openPQ } from "../db.ts";
import { scaled, type Workload } from "../workload.ts";
import { work } from "./work.ts";

const CONCURRENCY = 8;
const FILL_BATCH = 1_000;

export const workLease: Workload = {
  name: "work 20,000 no-op lease jobs, concurrency 8",
  notes:
    'pq: a task with { lease: "30s" }: claims committed at once, outcomes written per batch; raw: as for work',
  reps: 5,
  target: { text: "≥ 2x", met: (s) => s.ratio >= 2 },
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("jobs");
      const noop = q.task("noop", (_args: { n: number }) => {}, {
        lease: "30s",
      });
      const n = scaled(20_000, ctx.scale, 1_000);
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
        throw new Error(`work() did ${stats.done} of ${n} lease jobs`);
      }
      return { jobs: n, ms };
    } finally {
      await pq.close();
    }
  },
  raw: work.raw,
};
