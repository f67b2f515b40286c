/**
 * Jobs are never lost nor run again because of what they hold or throw:
 * undecodable data, thrown values that are not errors, and tasks that this
 * worker does not know.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createPQ, type Queue } from "../mod.ts";
import { openTestPQ, type TestPQ } from "./_pq.ts";

/** A decoder that refuses data without a string `kind`. */
function strictDecode(text: string): unknown {
  const value = JSON.parse(text);
  if (typeof value?.kind !== "string") throw new TypeError("bad job");
  return value;
}

describe("lost jobs", () => {
  let t: TestPQ;
  let n = 0;
  const fresh = <T = unknown>(): Queue<T> => t.pq.queue<T>(`l${n++}`);
  const quiet = { onEvent: () => {} };
  /** The stored row of a job, or undefined. */
  const row = async (id: string) =>
    (await t.sql`select state, data::text, error::text, attempts from ${
      t.sql(t.scratch.schema)
    }.queue where id = ${id}`)[0];

  before(async () => {
    t = await openTestPQ("lost_jobs");
  });
  after(async () => {
    await t.close();
  });

  test("get() parks a job it cannot decode as failed, keeping its text, and returns the next one", async () => {
    const errors: unknown[] = [];
    const strict = createPQ(t.sql, {
      schema: t.scratch.schema,
      decode: strictDecode,
      onError: (error) => void errors.push(error),
    });
    try {
      const q = strict.queue<{ kind: string }>(`strict${n++}`);
      const bad = await q.put({ kind: 42 } as unknown as { kind: string });
      const good = await q.put({ kind: "Cox" });
      const job = await q.get({ block: false });
      assert.equal(job?.id, good);
      assert.equal(job?.data.kind, "Cox");
      const parked = await row(bad);
      assert.ok(parked, "the undecodable job is still in the table");
      assert.equal(parked.state, "failed");
      assert.equal(parked.data, '{"kind":42}');
      const error = JSON.parse(parked.error);
      assert.equal(error.code, "DECODE_FAILED");
      assert.match(error.message, new RegExp(`job ${bad}.*bad job`));
      assert.equal(errors.length, 1, "the PQ's onError heard of it");
      assert.match(String((errors[0] as Error).message), new RegExp(bad));
      // Listed with its raw text and the decode error, and retried.
      const [failed] = await q.failed();
      assert.equal(failed.id, bad);
      assert.equal(failed.data, undefined);
      assert.equal(failed.rawData, '{"kind":42}');
      assert.match(failed.decodeError?.message ?? "", /bad job/);
      assert.equal(await q.retry(bad), true);
      assert.equal((await row(bad)).state, "ready");
      await q.clear();
    } finally {
      await strict.close();
    }
  });

  test("a pickled row with an unknown tag is parked, not lost, by get() inside a transaction too", async () => {
    const errors: unknown[] = [];
    const pq = createPQ(t.sql, {
      schema: t.scratch.schema,
      onError: (error) => void errors.push(error),
    });
    const q = pq.queue(`pickled${n++}/pickle`);
    const [{ id }] = await t.sql`insert into ${
      t.sql(t.scratch.schema)
    }.queue (queue, data) values (${q.name}, '{"$pq":"Nope","v":1}')
      returning id::text`;
    await q.put({ fine: true });
    const data = await q.transaction(async (qq) => (await qq.get())?.data);
    assert.deepEqual(data, { fine: true });
    const parked = await row(id);
    assert.equal(parked?.state, "failed");
    assert.equal(parked.data, '{"$pq":"Nope","v":1}');
    assert.equal(JSON.parse(parked.error).code, "DECODE_FAILED");
    assert.equal((errors[0] as { code?: string })?.code, "DECODE_FAILED");
    await q.clear();
    await pq.close();
  });

  test("the worker parks an undecodable task job with its text; failed() lists it and retry() works", async () => {
    const q = t.pq.queue(`wpickled${n++}/pickle`);
    let runs = 0;
    q.task("eat", () => void runs++);
    const [{ id }] = await t.sql`insert into ${
      t.sql(t.scratch.schema)
    }.queue (queue, task, data) values (${q.name}, 'eat', '{"$pq":"Nope"}')
      returning id::text`;
    const stats = await q.work({ burst: true, ...quiet });
    assert.deepEqual(stats, { done: 0, retried: 0, failed: 1 });
    assert.equal(runs, 0);
    const failed = await q.failed();
    assert.equal(failed.length, 1);
    assert.equal(failed[0].id, id);
    assert.equal(failed[0].rawData, '{"$pq":"Nope"}');
    assert.equal(failed[0].error?.code, "DECODE_FAILED");
    assert.ok(failed[0].decodeError);
    assert.equal(await q.retry(id), true);
    assert.equal((await row(id)).state, "ready");
    await q.clear();
  });

  test("any thrown value fails only its own job; the batch's other jobs run once", async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const nasty: unknown[] = [
      null,
      undefined,
      Symbol("boom"),
      Object.create(null),
      "x".repeat(2_000_000),
      cyclic,
      {
        toString() {
          throw new Error("no");
        },
      },
      new Proxy({}, {
        get() {
          throw new Error("trap");
        },
        getPrototypeOf() {
          throw new Error("trap");
        },
      }),
      Object.defineProperty(new Error("getter"), "message", {
        get() {
          throw new Error("no message");
        },
      }),
    ];
    const q = fresh();
    const runs = new Map<number, number>();
    const task = q.task("t", (i: number) => {
      runs.set(i, (runs.get(i) ?? 0) + 1);
      if (i % 2 === 1) throw nasty[(i - 1) / 2];
    });
    const count = nasty.length * 2 + 1;
    await task.many(Array.from({ length: count }, (_, i) => ({ args: i })));
    const stats = await q.work({
      burst: true,
      batchSize: 32,
      signal: AbortSignal.timeout(20_000),
      ...quiet,
    });
    assert.deepEqual(stats, {
      done: nasty.length + 1,
      retried: 0,
      failed: nasty.length,
    });
    for (let i = 0; i < count; i++) assert.equal(runs.get(i), 1, `job ${i}`);
    const failed = await q.failed();
    assert.equal(failed.length, nasty.length);
    for (const job of failed) assert.equal(typeof job.error?.message, "string");
    const long = failed.find((job) => (job.error?.message.length ?? 0) > 1000);
    assert.ok(long, "the long string is kept, cut");
    assert.ok(long.error!.message.length < 100_000);
    await q.clear();
  });

  test("a worker takes only jobs of tasks it has registered; others stay ready", async () => {
    const name = `rolling${n++}`;
    // Worker A runs old code: it knows "a" only. Another process knows "b".
    const old = t.pq.queue(name);
    const ran: string[] = [];
    const a = old.task("a", () => void ran.push("a"));
    const other = createPQ(t.sql, { schema: t.scratch.schema });
    try {
      const b = other.queue(name).task("b", () => void ran.push("b"));
      await b({});
      await a({});
      const stats = await old.work({ burst: true, ...quiet });
      assert.deepEqual(stats, { done: 1, retried: 0, failed: 0 });
      assert.deepEqual(ran, ["a"]);
      assert.equal(await old.size(), 1, "the job of b is still ready");
      assert.equal(await old.size({ task: "b" }), 1);
      assert.equal(await old.size({ task: "a" }), 0);
      assert.deepEqual(await old.failed(), []);
      // The worker that knows "b" runs it.
      const later = await other.queue(name).work({ burst: true, ...quiet });
      assert.deepEqual(later, { done: 1, retried: 0, failed: 0 });
      assert.deepEqual(ran, ["a", "b"]);
    } finally {
      await other.close();
    }
  });
});
