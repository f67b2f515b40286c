/**
 * work() with `groupConcurrency: 1` over 1,000 groups: 20,000 no-op jobs,
 * concurrency 8, against the same jobs of a task without limits (the
 * "raw" column here is pq unlimited, in the same run). Issue 13's target:
 * at least 0.5x.
 *
 * @module
 */

import { openPQ } from "../db.ts";
import type { RunContext, RunResult, Workload } from "../workload.ts";
import { scaled } from "../workload.ts";

const CONCURRENCY = 8;
const FILL_BATCH = 1_000;
const GROUPS = 1_000;

async function run(ctx: RunContext, grouped: boolean): Promise<RunResult> {
  const pq = await openPQ(ctx.sql, ctx.schema);
  try {
    const q = pq.queue("jobs");
    const noop = q.task(
      "noop",
      (_args: { n: number; g: string }) => {},
      grouped ? { group: (args) => args.g, groupConcurrency: 1 } : {},
    );
    const n = scaled(20_000, ctx.scale, 1_000);
    for (let i = 0; i < n; i += FILL_BATCH) {
      const k = Math.min(FILL_BATCH, n - i);
      await noop.many(
        Array.from({ length: k }, (_, j) => ({
          args: { n: i + j, g: `g${(i + j) % GROUPS}` },
        })),
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
}

export const workGroups: Workload = {
  name: "work 20,000 no-op jobs, 1,000 groups of groupConcurrency 1",
  notes:
    "pq: a task with { group, groupConcurrency: 1 }, work({ concurrency: 8, burst: true }); raw column: the same jobs of a task without limits",
  reps: 3,
  target: { text: "≥ 0.5x", met: (s) => s.ratio >= 0.5 },
  pq: (ctx) => run(ctx, true),
  raw: (ctx) => run(ctx, false),
};
