/**
 * The CPU cost of pq's OpenTelemetry instrumentation alone, without a
 * database: `PQ_BENCH_OTEL=off|api|sdk deno run -A bench/otel_overhead.ts`.
 * It times `tracedPut` and `tracedRun` (what every put and every job run
 * goes through, see `src/telemetry.ts`) around work that resolves at once,
 * so the figure is what the instrumentation adds to each put and run, free
 * of the noise of a shared machine that blurs the ratios of `bench/run.ts`.
 *
 * @module
 */

import type { PQCore } from "../src/core.ts";
import { startTelemetry, tracedPut, tracedRun } from "../src/telemetry.ts";
import type { TakenRow } from "../src/sql/take_jobs.ts";
import { otelMode, startOtel } from "./otel.ts";

const N = 200_000;
const mode = otelMode();
const stop = await startOtel(mode);
const core = { telemetry: null, telemetryLoaded: null } as unknown as PQCore;
if (mode !== "off") {
  core.telemetry = undefined;
  startTelemetry(core);
  await core.telemetryLoaded;
}
const row: TakenRow = {
  id: "1",
  data: "{}",
  cancelRequested: false,
  watched: false,
  enqueuedAt: new Date(),
  scheduleAt: null,
  expectedAt: null,
  task: "t",
  attempts: 0,
  key: null,
  group: null,
  trace: null,
};
const insert = (trace: string | null) => Promise.resolve(trace ?? "1");
const run = () => Promise.resolve(1);

async function time(name: string, once: () => Promise<unknown>) {
  for (let i = 0; i < N / 10; i++) await once(); // warm up
  const start = performance.now();
  for (let i = 0; i < N; i++) await once();
  const us = (performance.now() - start) * 1000 / N;
  console.log(`| ${mode} | ${name} | ${us.toFixed(2)} µs |`);
}

// A put, with the trace context of the put carried into its run.
let trace: string | null = null;
await time("put", async () => {
  trace = await tracedPut(core, "q", "t", 1, (t) => insert(t));
});
row.trace = trace === "1" ? null : trace;
await time("job run", () => tracedRun(core, "q", row, "t", run));
await stop();
