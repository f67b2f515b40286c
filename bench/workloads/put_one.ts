/**
 * put, 1 producer, sequential: one `put()` after another.
 *
 * @module
 */

import { openPQ } from "../db.ts";
import { RawQueue } from "../raw.ts";
import { scaled, timedLoops, type Workload } from "../workload.ts";

const WARMUP = 50;

export const putOne: Workload = {
  name: "put, 1 producer",
  notes: "raw: one prepared insert ... returning id",
  reps: 5,
  target: { text: "≥ 0.8x", met: (s) => s.ratio >= 0.8 },
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("jobs");
      for (let i = 0; i < WARMUP; i++) await q.put({ n: i });
      return await timedLoops(
        scaled(4_000, ctx.scale, 200),
        1,
        (i) => q.put({ n: i }),
      );
    } finally {
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    for (let i = 0; i < WARMUP; i++) await raw.put("jobs", { n: i });
    return await timedLoops(
      scaled(4_000, ctx.scale, 200),
      1,
      (i) => raw.put("jobs", { n: i }),
    );
  },
};
