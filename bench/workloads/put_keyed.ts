/**
 * A keyed put against an unkeyed one, 1 producer: `put(data, { key })`
 * with a new key each time (every put makes a job) against pq's own
 * `put(data)`.
 *
 * @module
 */

import { openPQ } from "../db.ts";
import { scaled, timedLoops, type Workload } from "../workload.ts";

const WARMUP = 50;

export const putKeyed: Workload = {
  name: "keyed put, 1 producer",
  notes: 'pq: put(data, { key }) with new keys; "raw": pq\'s unkeyed put',
  reps: 5,
  target: { text: "≥ 0.7x", met: (s) => s.ratio >= 0.7 },
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    try {
      const q = pq.queue("jobs");
      for (let i = 0; i < WARMUP; i++) await q.put({ n: i }, { key: `w${i}` });
      return await timedLoops(
        scaled(4_000, ctx.scale, 200),
        1,
        (i) => q.put({ n: i }, { key: `k${i}` }),
      );
    } finally {
      await pq.close();
    }
  },
  async raw(ctx) {
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
};
