/**
 * OpenTelemetry: spans for puts and runs with the messaging conventions'
 * attributes, the trace carried from a put in one process to the run in
 * another, failures, metrics, and no harm without a registered SDK.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { trace } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { createPQ } from "../mod.ts";
import { databaseUrl } from "./_db.ts";
import { type MetricPoint, registerOtel, type TestOtel } from "./_otel.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";
import { spawnTs } from "./_spawn.ts";

const PRODUCER = 3;
const CONSUMER = 4;
const ERROR = 2;

/** The `traceparent` of a sampled span. */
function traceparent(span: ReadableSpan): string {
  const { traceId, spanId } = span.spanContext();
  return `00-${traceId}-${spanId}-01`;
}

/** The sum of a metric's points for one queue. */
function total(
  found: Map<string, MetricPoint[]>,
  name: string,
  queue: string,
  field: "value" | "sum" = "value",
): number {
  return (found.get(name) ?? [])
    .filter((p) => p.attributes["messaging.destination.name"] === queue)
    .reduce((sum, p) => sum + (p[field] ?? 0), 0);
}

describe("OpenTelemetry", () => {
  let t: TestPQ;
  let otel: TestOtel | null = null;
  /** Registers the SDK once, after the test that runs without it. */
  const sdk = (): TestOtel => otel ??= registerOtel();
  const traces = async (queue: string) =>
    (await t.sql`select id::text, trace from ${t.sql(t.scratch.schema)}.queue
      where queue = ${queue} order by id::int8`).map((r) => [r.id, r.trace]);

  before(async () => {
    t = await openTestPQ("otel");
  });
  after(async () => {
    await t.close();
    await otel?.shutdown();
  });

  test("without a registered SDK, puts and runs work as ever and store no trace context", async () => {
    const q = t.pq.queue("no-sdk");
    let ran = 0;
    const task = q.task("t", () => {
      ran++;
    });
    await task({});
    await task.many([{ args: {} }, { args: {} }]);
    await q.put({ plain: true }, { key: "k" });
    assert.deepEqual((await traces("no-sdk")).map(([, tr]) => tr), [
      null,
      null,
      null,
      null,
    ]);
    assert.deepEqual(await q.work({ burst: true }), {
      done: 3,
      retried: 0,
      failed: 0,
    });
    assert.equal(ran, 3);
  });

  test("puts are send spans with the messaging attributes; a batch is one span, whose context every job of it stores", async () => {
    const o = sdk();
    const q = t.pq.queue("attrs");
    const task = q.task("fruit", () => {});
    const id = await q.put({ kind: "Cox" });
    const batch = await q.putMany([{ data: 1 }, { data: 2 }, { data: 3 }]);
    const keyed = await q.put({ kind: "Gala" }, { key: "gala" });
    const taskId = await task({});
    const sends = o.spans().filter((s) => s.name === "send attrs");
    assert.equal(sends.length, 4);
    const [one, many, withKey, ofTask] = sends;
    for (const span of sends) {
      assert.equal(span.kind, PRODUCER);
      assert.equal(span.attributes["messaging.system"], "pq");
      assert.equal(span.attributes["messaging.destination.name"], "attrs");
      assert.equal(span.attributes["messaging.operation.type"], "send");
      assert.equal(span.attributes["messaging.operation.name"], "put");
    }
    assert.equal(one.attributes["messaging.message.id"], id);
    assert.equal(one.attributes["messaging.batch.message_count"], undefined);
    assert.equal(many.attributes["messaging.message.id"], undefined);
    assert.equal(many.attributes["messaging.batch.message_count"], 3);
    assert.equal(withKey.attributes["messaging.message.id"], keyed);
    assert.equal(ofTask.attributes["messaging.pq.task"], "fruit");
    assert.equal(ofTask.attributes["messaging.message.id"], taskId);
    assert.deepEqual(await traces("attrs"), [
      [id, traceparent(one)],
      ...batch.map((b) => [b, traceparent(many)]),
      [keyed, traceparent(withKey)],
      [taskId, traceparent(ofTask)],
    ]);
    // A put inside a request's span is its child, in its trace.
    const inRequest = await trace.getTracer("test").startActiveSpan(
      "request",
      async (span) => {
        try {
          return await q.put({ kind: "Elstar" });
        } finally {
          span.end();
        }
      },
    );
    const parent = o.spans().find((s) => s.name === "request")!;
    const child = o.spans().find((s) =>
      s.attributes["messaging.message.id"] === inRequest
    )!;
    assert.equal(child.spanContext().traceId, parent.spanContext().traceId);
    assert.equal(child.parentSpanContext?.spanId, parent.spanContext().spanId);
    await q.clear();
  });

  test("a put in one process and its run in another share a trace: the run's span is a child of the put's, linked to it, with the handler's spans inside", async () => {
    const o = sdk();
    const worker = spawnTs("tests/fixtures/otel_worker.ts", [
      t.scratch.schema,
    ], { DATABASE_URL: databaseUrl() });
    try {
      await worker.line("READY", 30_000);
      const traced = t.pq.queue("otel").task("traced", () => {});
      const tracer = trace.getTracer("test");
      const { id, request } = await tracer.startActiveSpan(
        "cross-process request",
        async (span) => {
          try {
            return { id: await traced({}), request: span.spanContext() };
          } finally {
            span.end();
          }
        },
      );
      const send = o.spans().find((s) =>
        s.attributes["messaging.message.id"] === id
      )!;
      const run = JSON.parse(
        (await worker.line('SPAN {"name":"process otel"', 30_000)).slice(5),
      );
      assert.equal(run.traceId, request.traceId);
      assert.equal(run.parentSpanId, send.spanContext().spanId);
      assert.deepEqual(run.links, [send.spanContext().spanId]);
      assert.equal(run.kind, CONSUMER);
      assert.deepEqual(run.attributes, {
        "messaging.system": "pq",
        "messaging.destination.name": "otel",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.pq.task": "traced",
        "messaging.message.id": id,
        "messaging.pq.attempt": 1,
      });
      assert.notEqual(run.status, ERROR);
      const inside = JSON.parse(
        (await worker.line('SPAN {"name":"inside"')).slice(5),
      );
      assert.equal(inside.traceId, request.traceId);
      assert.equal(inside.parentSpanId, run.spanId);
    } finally {
      spawnSync("kill", ["-TERM", String(worker.process.pid)]);
      await worker.exited;
    }
  });

  for (const mode of ["transaction", "lease"] as const) {
    test(`${mode} mode: a handler that throws ends its span with status ERROR and the exception; the retry's span continues the same trace`, async () => {
      const o = sdk();
      const q = t.pq.queue(`flaky-${mode}`);
      let calls = 0;
      const task = q.task("flaky", () => {
        if (calls++ === 0) throw new Error("boom");
      }, {
        maxRetries: 1,
        retryIn: 0,
        ...(mode === "lease" ? { lease: "30s" } : {}),
      });
      const id = await task({});
      assert.deepEqual(await q.work({ burst: true, onEvent: () => {} }), {
        done: 1,
        retried: 1,
        failed: 0,
      });
      const send = o.spans().find((s) =>
        s.attributes["messaging.message.id"] === id && s.kind === PRODUCER
      )!;
      const runs = o.spans().filter((s) => s.name === `process ${q.name}`);
      assert.equal(runs.length, 2);
      const [failed, retried] = runs;
      assert.equal(failed.status.code, ERROR);
      assert.equal(failed.status.message, "boom");
      assert.equal(failed.attributes["error.type"], "Error");
      assert.equal(failed.attributes["messaging.pq.attempt"], 1);
      const exception = failed.events.find((e) => e.name === "exception");
      assert.equal(exception?.attributes?.["exception.message"], "boom");
      assert.notEqual(retried.status.code, ERROR);
      assert.equal(retried.attributes["messaging.pq.attempt"], 2);
      for (const run of runs) {
        assert.equal(run.spanContext().traceId, send.spanContext().traceId);
        assert.equal(run.parentSpanContext?.spanId, send.spanContext().spanId);
      }
    });
  }

  test("jobs that were scheduled, keyed or taken through a task's limits keep their put's trace in both modes", async () => {
    const o = sdk();
    const q = t.pq.queue("kept");
    const plain = q.task("plain", () => {});
    const limited = q.task("limited", () => {}, { concurrency: 1 });
    const leased = q.task("leased", () => {}, {
      concurrency: 1,
      lease: "30s",
    });
    const ids = [
      await plain({}, { scheduleAt: "50ms" }),
      await plain({}, { key: "once" }),
      await limited({}),
      await leased({}),
    ];
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await q.work({ burst: true })).done, 4);
    for (const id of ids) {
      const send = o.spans().find((s) =>
        s.kind === PRODUCER && s.attributes["messaging.message.id"] === id
      )!;
      const run = o.spans().find((s) =>
        s.kind === CONSUMER && s.attributes["messaging.message.id"] === id
      )!;
      assert.equal(run.spanContext().traceId, send.spanContext().traceId);
      assert.equal(run.parentSpanContext?.spanId, send.spanContext().spanId);
    }
  });

  test("metrics count jobs enqueued, completed, failed and retried, and how long they ran and waited", async () => {
    const o = sdk();
    const q = t.pq.queue("metrics");
    const ok = q.task("ok", () => new Promise((r) => setTimeout(r, 20)));
    const bad = q.task("bad", () => {
      throw new Error("no");
    }, { maxRetries: 1, retryIn: 0 });
    await ok.many([{ args: {} }, { args: {} }, { args: {} }]);
    await bad({});
    await q.work({ burst: true, onEvent: () => {} });
    const found = await o.metrics();
    assert.equal(total(found, "pq.jobs.enqueued", "metrics"), 4);
    assert.equal(total(found, "pq.jobs.completed", "metrics"), 3);
    assert.equal(total(found, "pq.jobs.retried", "metrics"), 1);
    assert.equal(total(found, "pq.jobs.failed", "metrics"), 1);
    assert.equal(total(found, "pq.job.duration", "metrics"), 5);
    assert.ok(total(found, "pq.job.duration", "metrics", "sum") >= 0.06);
    assert.equal(total(found, "pq.job.wait", "metrics"), 5);
    const durations = found.get("pq.job.duration")!.filter((p) =>
      p.attributes["messaging.destination.name"] === "metrics"
    );
    assert.deepEqual(
      durations.map((p) => [p.attributes["pq.job.outcome"], p.value]).sort(),
      [["completed", 3], ["failed", 1], ["retried", 1]],
    );
    const completed = found.get("pq.jobs.completed")!.find((p) =>
      p.attributes["messaging.destination.name"] === "metrics"
    )!;
    assert.deepEqual(completed.attributes, {
      "messaging.system": "pq",
      "messaging.destination.name": "metrics",
      "messaging.pq.task": "ok",
    });
  });

  test("telemetry: false never uses OpenTelemetry, even with an SDK registered", async () => {
    const o = sdk();
    const pq = createPQ(t.sql, { schema: t.scratch.schema, telemetry: false });
    try {
      const before = o.spans().length;
      await pq.queue("off").put(1);
      assert.equal(o.spans().length, before);
      assert.deepEqual((await traces("off")).map(([, tr]) => tr), [null]);
    } finally {
      await pq.close();
    }
  });
});
