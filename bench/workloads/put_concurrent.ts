/**
 * put, 8 concurrent producers, while a worker waits on another queue of the
 * same table. pq notifies only queues with a registered waiter; a raw
 * LISTEN-based queue notifies on every insert, and a NOTIFY serializes
 * commits on the notification queue's lock.
 *
 * @module
 */

import { openPQ, waitForWaiter } from "../db.ts";
import { RawQueue } from "../raw.ts";
import { scaled, timedLoops, type Workload } from "../workload.ts";

const PRODUCERS = 8;
const WARMUP = 80;

export const putConcurrent: Workload = {
  name: "put, 8 producers",
  notes:
    "a worker waits on another queue; raw: insert + pg_notify in one statement, a LISTEN connection open",
  reps: 5,
  target: { text: "≥ 1.5x", met: (s) => s.ratio >= 1.5 },
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    const stop = new AbortController();
    let working: Promise<unknown> = Promise.resolve();
    try {
      const other = pq.queue("other");
      other.task("noop", () => {});
      working = other.work({ signal: stop.signal });
      await waitForWaiter(ctx.sql, ctx.schema, "other");
      const q = pq.queue("jobs");
      await timedLoops(WARMUP, PRODUCERS, (i) => q.put({ n: i }));
      return await timedLoops(
        scaled(8_000, ctx.scale, 400),
        PRODUCERS,
        (i) => q.put({ n: i }),
      );
    } finally {
      stop.abort();
      await working;
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    const listening = await ctx.sql.listen(raw.channel, () => {});
    try {
      await timedLoops(
        WARMUP,
        PRODUCERS,
        (i) => raw.putNotify("jobs", { n: i }),
      );
      return await timedLoops(
        scaled(8_000, ctx.scale, 400),
        PRODUCERS,
        (i) => raw.putNotify("jobs", { n: i }),
      );
    } finally {
      await listening.unlisten();
    }
  },
};
