/**
 * OpenTelemetry for the benchmark, chosen by `PQ_BENCH_OTEL`:
 *
 * - `off`: `createPQ(sql, { telemetry: false })`, which is what a user
 *   without `@opentelemetry/api` gets: the package is never loaded.
 * - `api` (the default): pq as it is in this repository, where the API is
 *   installed (a dev dependency) but no SDK is registered: its spans are
 *   the API's no-op ones.
 * - `sdk`: the SDK registered as an application would: a tracer provider
 *   with a batch span processor, the W3C propagator, an AsyncLocalStorage
 *   context manager and a meter provider with a periodic reader, exporting
 *   to exporters that drop everything (the cost of pq's instrumentation and
 *   the SDK, not of a network).
 *
 * @module
 */

import process from "node:process";

/** The benchmark's OpenTelemetry mode. */
export type OtelMode = "off" | "api" | "sdk";

/** Reads `PQ_BENCH_OTEL`. */
export function otelMode(): OtelMode {
  const mode = process.env.PQ_BENCH_OTEL || "api";
  if (mode !== "off" && mode !== "api" && mode !== "sdk") {
    throw new Error(
      `PQ_BENCH_OTEL must be off, api or sdk: received ${mode}`,
    );
  }
  return mode;
}

/** Registers the SDK in `sdk` mode; returns what shuts it down. */
export async function startOtel(mode: OtelMode): Promise<() => Promise<void>> {
  if (mode !== "sdk") return () => Promise.resolve();
  const { context, metrics, propagation, trace } = await import(
    "@opentelemetry/api"
  );
  const { AsyncLocalStorageContextManager } = await import(
    "@opentelemetry/context-async-hooks"
  );
  const { W3CTraceContextPropagator } = await import("@opentelemetry/core");
  const { BasicTracerProvider, BatchSpanProcessor } = await import(
    "@opentelemetry/sdk-trace-base"
  );
  const { MeterProvider, PeriodicExportingMetricReader } = await import(
    "@opentelemetry/sdk-metrics"
  );
  const success = { code: 0 };
  const drop = {
    export: (_: unknown, done: (result: { code: number }) => void) =>
      done(success),
    shutdown: () => Promise.resolve(),
    forceFlush: () => Promise.resolve(),
  };
  const provider = new BasicTracerProvider({
    spanProcessors: [new BatchSpanProcessor(drop)],
  });
  const meterProvider = new MeterProvider({
    readers: [
      new PeriodicExportingMetricReader({
        exporter: drop,
        exportIntervalMillis: 10_000,
      }),
    ],
  });
  context.setGlobalContextManager(
    new AsyncLocalStorageContextManager().enable(),
  );
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  metrics.setGlobalMeterProvider(meterProvider);
  return async () => {
    await provider.shutdown();
    await meterProvider.shutdown();
  };
}
