/**
 * OpenTelemetry traces and metrics, through `@opentelemetry/api` when it is
 * installed (an optional peer dependency, loaded on first use like `croner`
 * in `cron.ts`). Without it, nothing is loaded and a put or a job pays one
 * property check: `core.telemetry` is null.
 *
 * Spans follow the messaging semantic conventions:
 *
 * - A put is a `send <queue>` span (kind PRODUCER), a child of the caller's
 *   active span. A batch (`putMany`, a task's `.many`) is one span with
 *   `messaging.batch.message_count`, not one per job: a span per job of a
 *   10,000-job batch would cost more than its insert, and every job of a
 *   batch comes from the same request. The span's context, as a W3C
 *   `traceparent` written by the API's propagator, is stored with the jobs
 *   (column `trace`, table step 6).
 * - A run is a `process <queue>` span (kind CONSUMER) whose parent is that
 *   stored context, and which also links to it. The conventions require the
 *   link (it survives batching) and allow the parent for one message; with
 *   the parent, the job's run shows in the trace of the request that put
 *   it, across processes, as users expect. The handler runs with this span
 *   active, so its own spans nest under it. A handler that throws records
 *   the exception and ends the span with status ERROR.
 *
 * `messaging.operation.type` is `send` for a put: the conventions replaced
 * `publish` with `send`, and `publish` belonged to the older attribute
 * `messaging.operation`.
 *
 * The metrics (`pq.jobs.*`, `pq.job.*`) are counted by the API's global
 * meter provider; see {@linkcode Telemetry}.
 *
 * @module
 */

import type { PQCore } from "./core.ts";
import type { TakenRow } from "./sql/take_jobs.ts";
import type { WorkStats } from "./work_options.ts";

/** An OpenTelemetry context, opaque to pq. */
type Context = unknown;

/** The parts of a span context that pq reads. */
interface SpanContext {
  traceId: string;
  spanId: string;
}

/** The parts of an OpenTelemetry span that pq uses. */
interface Span {
  spanContext(): SpanContext;
  setAttribute(key: string, value: string | number): unknown;
  recordException(exception: unknown): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

type Attributes = Record<string, string | number>;

interface Tracer {
  startSpan(
    name: string,
    options: {
      kind: number;
      attributes: Attributes;
      links?: { context: SpanContext }[];
    },
    context: Context,
  ): Span;
}

interface Counter {
  add(value: number, attributes: Attributes): void;
}

interface Histogram {
  record(value: number, attributes: Attributes): void;
}

interface Meter {
  createCounter(
    name: string,
    options: { description: string; unit?: string },
  ): Counter;
  createHistogram(
    name: string,
    options: { description: string; unit: string },
  ): Histogram;
}

interface MeterProvider {
  getMeter(name: string): Meter;
}

/**
 * The parts of `@opentelemetry/api` that pq uses, typed here so that pq's
 * types do not need the package.
 */
interface OtelApi {
  trace: {
    getTracer(name: string): Tracer;
    setSpan(context: Context, span: Span): Context;
    getSpanContext(context: Context): SpanContext | undefined;
    isSpanContextValid(spanContext: SpanContext): boolean;
  };
  context: {
    active(): Context;
    with<T>(context: Context, fn: () => T): T;
  };
  propagation: {
    inject(context: Context, carrier: Record<string, string>): void;
    extract(context: Context, carrier: Record<string, string>): Context;
  };
  metrics: { getMeterProvider(): MeterProvider };
  ROOT_CONTEXT: Context;
}

/** Span kinds and a status code, as the API numbers them (stable). */
const PRODUCER = 3;
const CONSUMER = 4;
const ERROR = 2;

/** The instruments of one meter provider. */
interface Instruments {
  provider: MeterProvider;
  enqueued: Counter;
  completed: Counter;
  failed: Counter;
  retried: Counter;
  duration: Histogram;
  wait: Histogram;
}

/**
 * pq's spans and metrics on a loaded `@opentelemetry/api`. Internal: a PQ
 * holds one in `core.telemetry` when the package is installed.
 *
 * Metrics, each with the attributes `messaging.system`,
 * `messaging.destination.name` (the queue) and `messaging.pq.task` (the
 * task, or `""` for plain jobs):
 *
 * - `pq.jobs.enqueued`: jobs put (counted when their insert succeeded; a
 *   caller's transaction that rolls back afterwards is not subtracted).
 * - `pq.jobs.completed`, `pq.jobs.failed`, `pq.jobs.retried`: task jobs,
 *   counted once their worker's batch committed, as `stats()` counts them.
 * - `pq.job.duration` (s): how long handlers ran, with `pq.job.outcome`
 *   (`completed`, `failed`, `retried`).
 * - `pq.job.wait` (s): from when a job could run (put, or its time came) to
 *   when a worker started it.
 */
export class Telemetry {
  readonly #api: OtelApi;
  readonly #tracer: Tracer;
  #instruments: Instruments | null = null;

  constructor(api: OtelApi) {
    this.#api = api;
    // The API's tracer is a proxy: a provider registered later is used.
    this.#tracer = api.trace.getTracer("pq");
  }

  /**
   * Runs a put's insert in a `send` span and gives it the trace context to
   * store; counts the jobs once it succeeded.
   *
   * @param count How many jobs the insert puts (more than 1: a batch).
   * @param insert The insert, given the `traceparent` or null.
   */
  async send<T extends string | string[] | null>(
    queue: string,
    task: string | null,
    count: number,
    insert: (trace: string | null) => Promise<T>,
  ): Promise<T> {
    const api = this.#api;
    const attributes = this.#attributes(queue, task, "send", "put");
    if (count !== 1) attributes["messaging.batch.message_count"] = count;
    const parent = api.context.active();
    const span = this.#tracer.startSpan(
      `send ${queue}`,
      { kind: PRODUCER, attributes },
      parent,
    );
    try {
      let result: T;
      // Stored whenever the span's context is valid, also when a sampler
      // dropped the span: the context carries that decision to the job's
      // run. Without a registered provider (and no valid span in the
      // caller's context) it is invalid: there is no trace to store, and a
      // span started under this one would be a root all the same, so the
      // insert runs in the caller's context. A context of its own per put
      // (a copy of the caller's) was most of what the API cost a put when
      // no SDK is registered (bench/RESULTS.md, "Single put").
      if (api.trace.isSpanContextValid(span.spanContext())) {
        const context = api.trace.setSpan(parent, span);
        const carrier: Record<string, string> = {};
        api.propagation.inject(context, carrier);
        const trace = carrier.traceparent ?? null;
        result = await api.context.with(context, () => insert(trace));
      } else {
        result = await insert(null);
      }
      if (typeof result === "string") {
        span.setAttribute("messaging.message.id", result);
      }
      if (result !== null) {
        this.#metrics().enqueued.add(
          count,
          this.#metricAttributes(queue, task),
        );
      }
      return result;
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /**
   * Runs a job's handler (`run`) in a `process` span that continues the
   * trace of its put, and records how long the job waited.
   */
  async process<T>(
    queue: string,
    row: TakenRow,
    task: string,
    run: () => Promise<T>,
  ): Promise<T> {
    const api = this.#api;
    const startedAt = Date.now();
    const ready = Math.max(
      row.enqueuedAt.getTime(),
      row.scheduleAt?.getTime() ?? 0,
    );
    // The server's clock against this process's: never below zero.
    this.#metrics().wait.record(
      Math.max(0, startedAt - ready) / 1000,
      this.#metricAttributes(queue, task),
    );
    const creation = row.trace === null
      ? api.ROOT_CONTEXT
      : api.propagation.extract(api.ROOT_CONTEXT, { traceparent: row.trace });
    const put = api.trace.getSpanContext(creation);
    const attributes = this.#attributes(queue, task, "process", "process");
    attributes["messaging.message.id"] = row.id;
    attributes["messaging.pq.attempt"] = row.attempts + 1;
    const span = this.#tracer.startSpan(
      `process ${queue}`,
      { kind: CONSUMER, attributes, links: put ? [{ context: put }] : [] },
      creation,
    );
    try {
      return await api.context.with(api.trace.setSpan(creation, span), run);
    } catch (error) {
      failed(span, error);
      throw error;
    } finally {
      span.end();
    }
  }

  /** Counts a job's outcome, once its batch committed. */
  outcome(
    queue: string,
    task: string,
    stat: keyof WorkStats,
    durationMs: number | null,
  ): void {
    const metrics = this.#metrics();
    const attributes = this.#metricAttributes(queue, task);
    const counter = stat === "done"
      ? metrics.completed
      : stat === "failed"
      ? metrics.failed
      : metrics.retried;
    counter.add(1, attributes);
    if (durationMs !== null) {
      // A new object: the SDK may keep the one a counter was given.
      metrics.duration.record(durationMs / 1000, {
        ...attributes,
        "pq.job.outcome": stat === "done" ? "completed" : stat,
      });
    }
  }

  #attributes(
    queue: string,
    task: string | null,
    type: string,
    name: string,
  ): Attributes {
    const attributes: Attributes = {
      "messaging.system": "pq",
      "messaging.destination.name": queue,
      "messaging.operation.type": type,
      "messaging.operation.name": name,
    };
    if (task !== null) attributes["messaging.pq.task"] = task;
    return attributes;
  }

  #metricAttributes(queue: string, task: string | null): Attributes {
    return {
      "messaging.system": "pq",
      "messaging.destination.name": queue,
      "messaging.pq.task": task ?? "",
    };
  }

  /**
   * The instruments of the current global meter provider. Unlike the
   * tracer, a meter is not a proxy: one made before the application
   * registered its provider would count nothing, so they are made again
   * when the provider changes.
   */
  #metrics(): Instruments {
    const provider = this.#api.metrics.getMeterProvider();
    if (this.#instruments?.provider === provider) return this.#instruments;
    const meter = provider.getMeter("pq");
    const count = (name: string, description: string) =>
      meter.createCounter(name, { description, unit: "{job}" });
    return this.#instruments = {
      provider,
      enqueued: count("pq.jobs.enqueued", "Jobs put"),
      completed: count("pq.jobs.completed", "Task jobs completed"),
      failed: count("pq.jobs.failed", "Task jobs failed for good"),
      retried: count(
        "pq.jobs.retried",
        "Task job runs that failed and will run again",
      ),
      duration: meter.createHistogram("pq.job.duration", {
        description: "How long task handlers ran",
        unit: "s",
      }),
      wait: meter.createHistogram("pq.job.wait", {
        description:
          "How long task jobs waited, from when they could run to their start",
        unit: "s",
      }),
    };
  }
}

/** Records a failure on a span: the exception, `error.type`, ERROR. */
function failed(span: Span, error: unknown): void {
  const code = (error as { code?: unknown })?.code;
  const type = typeof code === "string"
    ? code
    : (error as { name?: unknown })?.name;
  span.setAttribute(
    "error.type",
    typeof type === "string" && type !== "" ? type : "_OTHER",
  );
  span.recordException(
    error instanceof Error ? error : { message: String(error) },
  );
  span.setStatus({
    code: ERROR,
    message: error instanceof Error ? error.message : String(error),
  });
}

let loading: Promise<OtelApi | null> | null = null;

/** Loads `@opentelemetry/api` once per process; null if not installed. */
function loadApi(): Promise<OtelApi | null> {
  loading ??= (async () => {
    try {
      // A variable: bundlers must not require it, nor type checkers know it.
      const name = "@opentelemetry/api";
      const api = await import(name);
      // Named exports; the default export lacks ROOT_CONTEXT.
      return (api.trace ? api : api.default) as OtelApi;
    } catch {
      return null;
    }
  })();
  return loading;
}

/**
 * Starts loading a PQ's telemetry (`telemetry: true`, the default) so that
 * the first put usually finds it loaded.
 */
export function startTelemetry(core: PQCore): void {
  core.telemetryLoaded = loadApi().then((api) => {
    core.telemetry = api ? new Telemetry(api) : null;
    return core.telemetry;
  });
}

/** The PQ's telemetry, once loaded; null without OpenTelemetry. */
function telemetryOf(
  core: PQCore,
): Telemetry | null | Promise<Telemetry | null> {
  return core.telemetry !== undefined
    ? core.telemetry
    : core.telemetryLoaded ?? null;
}

/**
 * Runs a put's insert: plainly (`trace` null) without OpenTelemetry, in a
 * `send` span with it (see {@linkcode Telemetry.send}).
 */
export function tracedPut<T extends string | string[] | null>(
  core: PQCore,
  queue: string,
  task: string | null,
  count: number,
  insert: (trace: string | null) => Promise<T>,
): Promise<T> {
  const telemetry = telemetryOf(core);
  if (telemetry === null) return insert(null);
  if (telemetry instanceof Telemetry) {
    return telemetry.send(queue, task, count, insert);
  }
  return telemetry.then((loaded) =>
    loaded ? loaded.send(queue, task, count, insert) : insert(null)
  );
}

/**
 * Runs a job's handler: plainly without OpenTelemetry, in a `process` span
 * with it (see {@linkcode Telemetry.process}).
 */
export function tracedRun<T>(
  core: PQCore,
  queue: string,
  row: TakenRow,
  task: string,
  run: () => Promise<T>,
): Promise<T> {
  const telemetry = telemetryOf(core);
  if (telemetry === null) return run();
  if (telemetry instanceof Telemetry) {
    return telemetry.process(queue, row, task, run);
  }
  return telemetry.then((loaded) =>
    loaded ? loaded.process(queue, row, task, run) : run()
  );
}
