/**
 * Registers the OpenTelemetry SDK for a test process, the way an
 * application does: a tracer provider with in-memory spans, the W3C trace
 * context propagator, an AsyncLocalStorage context manager, and a meter
 * provider whose metrics a test collects on demand.
 *
 * @module
 */

import { context, metrics, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from "@opentelemetry/sdk-metrics";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";

/** The registered SDK of a test process. */
export interface TestOtel {
  /** The spans ended so far (with the in-memory exporter). */
  spans(): ReadableSpan[];
  /** Collects the metrics now: the sum of each counter, histograms' counts. */
  metrics(): Promise<Map<string, MetricPoint[]>>;
  /** Unregisters everything and stops the SDK. */
  shutdown(): Promise<void>;
}

/** One data point of a metric: its attributes and value. */
export interface MetricPoint {
  attributes: Record<string, unknown>;
  /** A counter's sum, or a histogram's count. */
  value: number;
  /** A histogram's sum (undefined for counters). */
  sum?: number;
}

/**
 * Registers the SDK globally. Spans go to `exporter` (default: in memory,
 * read through `spans()`).
 */
export function registerOtel(exporter?: SpanExporter): TestOtel {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter ?? memory)],
  });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const metricExporter = new InMemoryMetricExporter(
    AggregationTemporality.CUMULATIVE,
  );
  // Exports when the test asks (forceFlush), not on a timer.
  const reader = new PeriodicExportingMetricReader({
    exporter: metricExporter,
    exportIntervalMillis: 3_600_000,
  });
  const meterProvider = new MeterProvider({ readers: [reader] });
  context.setGlobalContextManager(contextManager);
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans: () => memory.getFinishedSpans(),
    async metrics() {
      await meterProvider.forceFlush();
      const found = new Map<string, MetricPoint[]>();
      const last = metricExporter.getMetrics().at(-1);
      for (const scope of last?.scopeMetrics ?? []) {
        for (const metric of scope.metrics) {
          found.set(
            metric.descriptor.name,
            metric.dataPoints.map((point) => {
              const value = point.value as
                | number
                | { count: number; sum?: number };
              return typeof value === "number"
                ? { attributes: point.attributes, value }
                : {
                  attributes: point.attributes,
                  value: value.count,
                  sum: value.sum,
                };
            }),
          );
        }
      }
      return found;
    },
    async shutdown() {
      trace.disable();
      propagation.disable();
      metrics.disable();
      context.disable();
      await provider.shutdown();
      await meterProvider.shutdown();
    },
  };
}
