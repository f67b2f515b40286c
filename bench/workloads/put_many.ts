/**
 * putMany in batches of 1,000 jobs, one batch after another.
 *
 * @module
 */

import { openPQ } from "../db.ts";
import { RawQueue } from "../raw.ts";
import {
  type RunResult,
  scaled,
  timedLoops,
  type Workload,
} from "../workload.ts";

const BATCH = 1_000;

function batches(scale: number): { n: number }[][] {
  return Array.from(
    { length: scaled(50, scale, 3) },
    (_, b) => Array.from({ length: BATCH }, (_, i) => ({ n: b * BATCH + i })),
  );
}

/** Counts jobs rather than batches; latencies stay per batch. */
function perJob(result: RunResult): RunResult {
  return { ...result, jobs: result.jobs * BATCH };
}

export const putMany: Workload = {
  name: "putMany, batches of 1,000",
  notes:
    "raw: insert ... select from unnest($2::text[]) returning id; p50/p99 per batch",
  reps: 5,
  target: { text: "≥ 0.5x", met: (s) => s.ratio >= 0.5 },
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("jobs");
      const all = batches(ctx.scale);
      await q.putMany(all[0].map((data) => ({ data })));
      const items = all.map((b) => b.map((data) => ({ data })));
      return perJob(
        await timedLoops(items.length, 1, (i) => q.putMany(items[i])),
      );
    } finally {
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    const all = batches(ctx.scale);
    await raw.putMany("jobs", all[0]);
    return perJob(
      await timedLoops(all.length, 1, (i) => raw.putMany("jobs", all[i])),
    );
  },
};
