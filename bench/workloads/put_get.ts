/**
 * put then get, over and over, on a client of one connection: operations per
 * second to set beside Python pq's claim of about 1,000.
 *
 * @module
 */

import { connect, openPQ } from "../db.ts";
import { RawQueue } from "../raw.ts";
import {
  type RunResult,
  scaled,
  timedLoops,
  type Workload,
} from "../workload.ts";

const WARMUP = 50;

/** Two operations (a put and a get) per timed step. */
function perOp(result: RunResult): RunResult {
  return { ...result, jobs: result.jobs * 2 };
}

export const putGet: Workload = {
  name: "put+get, 1 connection",
  notes:
    "ops/s (each put and each get is one op), p50/p99 per put+get pair; Python pq claims ~1,000 ops/s",
  reps: 5,
  target: {
    text: "pq ≥ 1,000 ops/s",
    met: (s) => s.pq.rate >= 1_000,
  },
  async pq(ctx) {
    const one = connect(ctx.url, 1);
    const pq = await openPQ(one, ctx.schema);
    try {
      const q = pq.queue("jobs");
      const step = async (i: number) => {
        await q.put({ n: i });
        if (!await q.get()) throw new Error("get() found no job");
      };
      for (let i = 0; i < WARMUP; i++) await step(i);
      return perOp(await timedLoops(scaled(3_000, ctx.scale, 150), 1, step));
    } finally {
      await pq.close();
      await one.end();
    }
  },
  async raw(ctx) {
    const one = connect(ctx.url, 1);
    try {
      const raw = await RawQueue.create(one, ctx.schema);
      const step = async (i: number) => {
        await raw.put("jobs", { n: i });
        if (!await raw.take("jobs")) throw new Error("raw take found no job");
      };
      for (let i = 0; i < WARMUP; i++) await step(i);
      return perOp(await timedLoops(scaled(3_000, ctx.scale, 150), 1, step));
    } finally {
      await one.end();
    }
  },
};
