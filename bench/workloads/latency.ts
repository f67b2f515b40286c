/**
 * Latency from put() to the handler's start, with one worker waiting on the
 * queue: each job is put only after the previous one finished and the
 * worker went back to waiting, so every sample goes through a wake-up.
 *
 * @module
 */

import { openPQ, sleep, waitForWaiter } from "../db.ts";
import { RawQueue } from "../raw.ts";
import { formatLatency, median, percentile } from "../stats.ts";
import {
  type RunResult,
  scaled,
  type Summary,
  type Workload,
} from "../workload.ts";

/** Pause after each job, so that the worker is idle again. */
const GAP_MS = 3;
const WARMUP = 20;

/**
 * Puts `n + WARMUP` jobs one at a time: `put(i)` enqueues job `i` and
 * returns the promise of the put and that of the job's end. Latencies are
 * from the put() call to the handler's start (`starts[i]`); `extra` has the
 * same from the moment the put resolved, negative when the handler started
 * first.
 */
async function probe(
  n: number,
  starts: Float64Array,
  put: (i: number) => { put: Promise<unknown>; done: Promise<void> },
): Promise<RunResult> {
  const latencies: number[] = [];
  const afterPut: number[] = [];
  const begin = performance.now();
  for (let i = 0; i < n + WARMUP; i++) {
    const t0 = performance.now();
    const job = put(i);
    await job.put;
    const t1 = performance.now();
    await job.done;
    if (i >= WARMUP) {
      latencies.push(starts[i] - t0);
      afterPut.push(starts[i] - t1);
    }
    await sleep(GAP_MS);
  }
  return {
    jobs: n,
    ms: performance.now() - begin,
    latencies,
    extra: {
      afterPutP50: percentile(afterPut, 50),
      afterPutP99: percentile(afterPut, 99),
    },
  };
}

/** A promise and its resolver. */
function signal(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  return { promise, resolve };
}

export const latency: Workload = {
  name: "latency put -> handler start",
  notes:
    "from the put() call; 1 waiting worker; raw: LISTEN, on each notification begin; delete ... returning; commit",
  reps: 5,
  showRate: false,
  ratio: (pq, raw) => median(pq.latencies!) / median(raw.latencies!),
  target: {
    text: "p50 ≤ 1.5x raw, p99 < 5 ms",
    met: (s: Summary) => s.ratio <= 1.5 && s.pq.p99 < 5,
  },
  details: (s) => [
    `- latency from the moment put() resolved to the handler's start, p50/p99: pq ${
      formatLatency(s.pq.extra.afterPutP50, s.pq.extra.afterPutP99)
    }, raw ${formatLatency(s.raw.extra.afterPutP50, s.raw.extra.afterPutP99)}`,
  ],
  async pq(ctx) {
    const pq = await openPQ(ctx.sql, ctx.schema);
    const stop = new AbortController();
    let working: Promise<unknown> = Promise.resolve();
    try {
      const n = scaled(1_000, ctx.scale, 50);
      const starts = new Float64Array(n + WARMUP);
      const q = pq.queue("jobs");
      let finished = signal();
      const mark = q.task("mark", (args: { i: number }) => {
        starts[args.i] = performance.now();
      });
      working = q.work({
        signal: stop.signal,
        onEvent: (e) => {
          if (e.type === "success") finished.resolve();
        },
      });
      await waitForWaiter(ctx.sql, ctx.schema, "jobs");
      return await probe(n, starts, (i) => {
        finished = signal();
        return { put: mark({ i }), done: finished.promise };
      });
    } finally {
      stop.abort();
      await working;
      await pq.close();
    }
  },
  async raw(ctx) {
    const raw = await RawQueue.create(ctx.sql, ctx.schema);
    const n = scaled(1_000, ctx.scale, 50);
    const starts = new Float64Array(n + WARMUP);
    let finished = signal();
    let chain = Promise.resolve();
    const listening = await ctx.sql.listen(raw.channel, () => {
      chain = chain.then(async () => {
        await raw.work("jobs", (job) => {
          starts[(job.data as { i: number }).i] = performance.now();
        });
        finished.resolve();
      });
    });
    try {
      return await probe(n, starts, (i) => {
        finished = signal();
        return { put: raw.putNotify("jobs", { i }), done: finished.promise };
      });
    } finally {
      await listening.unlisten();
      await chain;
    }
  },
};
