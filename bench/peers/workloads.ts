/**
 * The five workloads of issue 17, written once against {@linkcode Peer}:
 * put with one producer, put with eight, bulk put in batches of 1,000, work
 * 20,000 no-op jobs at concurrency 8, and pickup latency with an idle
 * worker and a job put every 20 ms. Each runs in a fresh process and a
 * fresh schema (see ./child.ts), warms up first, then times its part and
 * meters CPU over exactly that part.
 *
 * @module
 */

import type { CpuReading } from "./cpu.ts";
import type { Payload, Peer } from "./peer.ts";

/** What one run of one workload measured. */
export interface RunResult {
  /** Jobs in the timed part. */
  jobs: number;
  /** Milliseconds of the timed part. */
  ms: number;
  /** Latency workload: put call -> handler start of each job, in ms. */
  latencies?: number[];
  /** CPU over the timed part (not for latency, which mostly waits). */
  cpu?: CpuReading;
}

/** What a workload gets besides the peer. */
export interface WorkloadContext {
  /** 1 for the full run, 1/20 with `--quick`. */
  scale: number;
  /** Starts metering CPU. */
  meter(): Promise<{ read(): Promise<CpuReading> }>;
}

/** A workload: its id (for --only and the child's argument) and its run. */
export interface Workload {
  id: string;
  run(peer: Peer, ctx: WorkloadContext): Promise<RunResult>;
}

const PRODUCERS = 8;
const CONCURRENCY = 8;
const BATCH = 1_000;
/** Pause between puts in the latency workload. */
const PUT_EVERY_MS = 20;
/** How long any job may take to be picked up before the run fails. */
const PICKUP_TIMEOUT_MS = 60_000;

function scaled(n: number, scale: number, min: number): number {
  return Math.max(min, Math.round(n * scale));
}

/** Runs `op(i)` for i in [from, to) on `loops` concurrent loops. */
async function loops(
  from: number,
  to: number,
  count: number,
  op: (i: number) => Promise<unknown>,
): Promise<void> {
  let next = from;
  await Promise.all(
    Array.from({ length: count }, async () => {
      for (let i = next++; i < to; i = next++) await op(i);
    }),
  );
}

/** Puts `n` jobs on `producers` loops after `warmup` untimed ones. */
async function puts(
  peer: Peer,
  ctx: WorkloadContext,
  n: number,
  producers: number,
): Promise<RunResult> {
  // Untimed: JIT, prepared statements and the pool's connections warm up.
  const warmup = Math.max(50, 10 * producers);
  await loops(0, warmup, producers, (i) => peer.put({ i }));
  const meter = await ctx.meter();
  const start = performance.now();
  await loops(warmup, warmup + n, producers, (i) => peer.put({ i }));
  const ms = performance.now() - start;
  return { jobs: n, ms, cpu: await meter.read() };
}

function batch(from: number, size: number): Payload[] {
  return Array.from({ length: size }, (_, k) => ({ i: from + k }));
}

/** Rejects after `ms` with `message`, unless `promise` settles first. */
async function within<T>(
  promise: Promise<T>,
  ms: number,
  message: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise and its resolver (Node 20 has no `Promise.withResolvers`). */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => resolve = r);
  return { promise, resolve };
}

export const putOne: Workload = {
  id: "put1",
  run: (peer, ctx) => puts(peer, ctx, scaled(4_000, ctx.scale, 200), 1),
};

export const putEight: Workload = {
  id: "put8",
  run: (peer, ctx) => puts(peer, ctx, scaled(8_000, ctx.scale, 400), PRODUCERS),
};

export const putBulk: Workload = {
  id: "bulk",
  async run(peer, ctx) {
    // 100,000 jobs: at 20 batches the fastest systems were done in 0.2 s.
    const batches = scaled(100, ctx.scale, 5);
    await peer.putMany(batch(0, BATCH));
    const meter = await ctx.meter();
    const start = performance.now();
    for (let b = 1; b <= batches; b++) {
      await peer.putMany(batch(b * BATCH, BATCH));
    }
    const ms = performance.now() - start;
    return { jobs: batches * BATCH, ms, cpu: await meter.read() };
  },
};

export const work: Workload = {
  id: "work",
  async run(peer, ctx) {
    const n = scaled(20_000, ctx.scale, 1_000);
    for (let i = 0; i < n; i += BATCH) {
      await peer.putMany(batch(i, Math.min(BATCH, n - i)));
    }
    const seen = new Uint8Array(n);
    let done = 0, twice = 0;
    const all = deferred();
    const meter = await ctx.meter();
    const start = performance.now();
    const worker = await peer.work(CONCURRENCY, ({ i }) => {
      if (seen[i]++) twice++;
      else if (++done === n) all.resolve();
    });
    await within(all.promise, PICKUP_TIMEOUT_MS * 5, `work: ${done} of ${n}`);
    // Stopping waits for the last completions to commit: part of the work.
    await worker.stop();
    const ms = performance.now() - start;
    const cpu = await meter.read();
    const left = await peer.pending();
    if (left || twice) {
      throw new Error(`work: ${left} jobs left, ${twice} ran twice`);
    }
    return { jobs: n, ms, cpu };
  },
};

export const latency: Workload = {
  id: "latency",
  async run(peer, ctx) {
    const n = scaled(500, ctx.scale, 50);
    const warmup = 20;
    const calls = new Float64Array(n + warmup);
    const starts = new Float64Array(n + warmup);
    const ran = Array.from({ length: n + warmup }, deferred);
    const worker = await peer.work(1, ({ i }) => {
      starts[i] = performance.now();
      ran[i].resolve();
    });
    try {
      // One at a time, each waited for: the worker is up and listening.
      for (let i = n; i < n + warmup; i++) {
        await peer.put({ i });
        await within(ran[i].promise, PICKUP_TIMEOUT_MS, `warm-up job ${i}`);
      }
      const begin = performance.now();
      const put: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++) {
        // On a fixed schedule, not after the previous job: an open loop.
        const due = begin + i * PUT_EVERY_MS;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        calls[i] = performance.now();
        put.push(peer.put({ i }));
      }
      await Promise.all(put);
      await within(
        Promise.all(ran.slice(0, n).map((d) => d.promise)),
        PICKUP_TIMEOUT_MS,
        "latency: jobs not picked up",
      );
      const latencies = Array.from(
        { length: n },
        (_, i) => starts[i] - calls[i],
      );
      return { jobs: n, ms: performance.now() - begin, latencies };
    } finally {
      await worker.stop();
    }
  },
};

/** Every workload, in the order of the table. */
export const WORKLOADS: readonly Workload[] = [
  putOne,
  putEight,
  putBulk,
  work,
  latency,
];
