/**
 * Load: 100 concurrent consumers (blocking `get()` loops) on one PQ, then on
 * ten PQs sharing the table and the queue (ten listeners), while producers
 * put jobs as fast as they can for a bounded time; then the consumers drain
 * the queue. No job may be delivered twice or left behind, and no statement
 * may fail: with `lock_timeout` set, a lock wait that long is an error, and
 * a deadlock is one anyway.
 *
 * Prints jobs/s (put and taken) and the latency from just before a job's
 * put to its get returning, p50 and p99: with producers at full speed a
 * backlog builds up, so latency includes the time spent waiting in it.
 *
 * Sizes: PQ_LOAD_SECONDS (default 10), PQ_LOAD_CONSUMERS (default 100),
 * PQ_LOAD_PRODUCERS (default 4), PQ_LOAD_POOL (connections, default 20).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPQ, type PQ } from "../../mod.ts";
import { databaseUrl, testSchema } from "../_db.ts";
import { sleep } from "../_pq.ts";
import { envNumber, percentile, waitFor } from "./_fault.ts";

const SECONDS = envNumber("PQ_LOAD_SECONDS", 10);
const CONSUMERS = envNumber("PQ_LOAD_CONSUMERS", 100);
const PRODUCERS = envNumber("PQ_LOAD_PRODUCERS", 4);
const POOL = envNumber("PQ_LOAD_POOL", 20);

interface LoadResult {
  put: number;
  putPerSecond: number;
  takenPerSecond: number;
  p50: number;
  p99: number;
  maxBacklog: number;
}

/**
 * Runs producers and consumers over `pqs` (consumers spread evenly over
 * them) and checks exactly-once delivery.
 */
async function runLoad(pqs: PQ[], name: string): Promise<LoadResult> {
  const queues = pqs.map((pq) => pq.queue<{ t: number }>(name));
  const delivered = new Map<string, number>();
  const latencies: number[] = [];
  const errors: unknown[] = [];
  const produced: string[] = [];
  const stopConsumers = new AbortController();
  let producing = true;
  let maxBacklog = 0;

  const consumers = Array.from({ length: CONSUMERS }, async (_, i) => {
    const q = queues[i % queues.length];
    for (;;) {
      try {
        const job = await q.get({
          timeout: "2s",
          signal: stopConsumers.signal,
        });
        if (!job) continue;
        latencies.push(performance.now() - job.data.t);
        delivered.set(job.id, (delivered.get(job.id) ?? 0) + 1);
      } catch (error) {
        if (stopConsumers.signal.aborted) return;
        errors.push(error);
        await sleep(100);
      }
    }
  });

  const started = performance.now();
  const producers = Array.from({ length: PRODUCERS }, async (_, i) => {
    const q = queues[i % queues.length];
    const batch = i % 2 === 0 ? 1 : 20; // half put one by one, half in batches
    while (producing) {
      try {
        const t = performance.now();
        if (batch === 1) produced.push(await q.put({ t }));
        else {
          produced.push(
            ...await q.putMany(
              Array.from({ length: batch }, () => ({ data: { t } })),
            ),
          );
        }
      } catch (error) {
        errors.push(error);
        await sleep(100);
      }
    }
  });
  const monitor = (async () => {
    while (producing) {
      await sleep(500);
      maxBacklog = Math.max(maxBacklog, produced.length - delivered.size);
    }
  })();

  await sleep(SECONDS * 1000);
  producing = false;
  await Promise.all([...producers, monitor]);
  const putSeconds = (performance.now() - started) / 1000;
  await waitFor(
    () => delivered.size >= produced.length || errors.length > 0,
    "the consumers to take every job",
    120_000,
    50,
  );
  const takenSeconds = (performance.now() - started) / 1000;
  // Let the consumers look once more: nothing may come twice.
  await sleep(300);
  stopConsumers.abort();
  await Promise.all(consumers);

  assert.deepEqual(errors, [], "no statement failed");
  const twice = [...delivered].filter(([, n]) => n > 1);
  assert.deepEqual(twice, [], "no job delivered twice");
  assert.equal(new Set(produced).size, produced.length, "ids are unique");
  const missing = produced.filter((id) => !delivered.has(id));
  assert.deepEqual(missing.slice(0, 10), [], "every job delivered");
  assert.equal(delivered.size, produced.length, "nothing else delivered");
  assert.equal(await queues[0].size(), 0, "nothing left behind");
  return {
    put: produced.length,
    putPerSecond: produced.length / putSeconds,
    takenPerSecond: produced.length / takenSeconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    maxBacklog,
  };
}

function report(label: string, r: LoadResult): void {
  console.log(
    `  load, ${label}: ${r.put} jobs in ${SECONDS} s by ${PRODUCERS} ` +
      `producers, ${CONSUMERS} consumers, pool ${POOL}: put ` +
      `${Math.round(r.putPerSecond)} jobs/s, taken ${
        Math.round(r.takenPerSecond)
      } jobs/s (until drained); put-to-get latency p50 ${
        Math.round(r.p50)
      } ms, p99 ${Math.round(r.p99)} ms; largest backlog ${r.maxBacklog}`,
  );
}

/** A shared pool on which lock waits of 5 s and more are errors. */
function pool(): postgres.Sql {
  return postgres(databaseUrl(), {
    max: POOL,
    onnotice: () => {},
    connection: { lock_timeout: 5_000, application_name: "pq load" },
  });
}

test(`load: ${CONSUMERS} consumers on one PQ, producers at full speed for ${SECONDS} s`, async () => {
  const sql = pool();
  const scratch = await testSchema(sql, "load_one");
  const pq = createPQ(sql, { schema: scratch.schema });
  try {
    await pq.create();
    report("one PQ", await runLoad([pq], "one"));
  } finally {
    await pq.close();
    await scratch.drop();
    await sql.end({ timeout: 1 });
  }
});

test(`load: ${CONSUMERS} consumers on ten PQs sharing a table, producers at full speed for ${SECONDS} s`, async () => {
  const sql = pool();
  const scratch = await testSchema(sql, "load_ten");
  const pqs = Array.from(
    { length: 10 },
    () => createPQ(sql, { schema: scratch.schema }),
  );
  try {
    await pqs[0].create();
    report("ten PQs", await runLoad(pqs, "ten"));
  } finally {
    await Promise.all(pqs.map((pq) => pq.close()));
    await scratch.drop();
    await sql.end({ timeout: 1 });
  }
});
