/**
 * Fault: worker processes die by SIGKILL at random moments (while a
 * handler's effect is written but not committed, while a batch commits,
 * while the process starts) and are restarted. Every job's effect must
 * exist exactly once at the end, and the queue must be empty.
 *
 * Sizes: PQ_FAULT_JOBS (default 10,000), PQ_FAULT_WORKERS (default 3),
 * PQ_FAULT_KILLS (the most kills, default 40).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { databaseUrl } from "../_db.ts";
import { openTestPQ, sleep } from "../_pq.ts";
import type { Child } from "../_spawn.ts";
import {
  assertExactlyOnce,
  between,
  createEffects,
  enqueue,
  envNumber,
  startWorker,
  tally,
  workerFailures,
} from "./_fault.ts";

const JOBS = envNumber("PQ_FAULT_JOBS", 10_000);
const WORKERS = envNumber("PQ_FAULT_WORKERS", 3);
/** At most this many kills, so that a slow machine still finishes soon. */
const KILLS = envNumber("PQ_FAULT_KILLS", 40);
/** The test fails if the jobs are not all done by then. */
const DEADLINE_MS = envNumber("PQ_FAULT_DEADLINE_MS", 180_000);

test(`kill -9 of worker processes at random moments: ${JOBS} jobs, each effect exactly once`, async () => {
  const t = await openTestPQ("fault_kill", { max: 4 });
  const { sql } = t;
  const schema = t.scratch.schema;
  const workers: (Child | null)[] = Array(WORKERS).fill(null);
  const exited: Child[] = [];
  try {
    await createEffects(sql, schema);
    const record = t.pq.queue("work").task("record", () => {});
    const ids = await enqueue(record.many, JOBS);
    const url = databaseUrl();
    const start = (slot: number) => {
      workers[slot] = startWorker(url, schema, {
        mode: "burst",
        app: `pq fault kill ${slot}`,
        // Handlers of up to 20 ms keep transactions open long enough for
        // kills to land inside them, and the run long enough for many kills.
        handlerMs: 20,
      });
    };
    for (let slot = 0; slot < WORKERS; slot++) start(slot);

    const began = performance.now();
    let kills = 0, starts = WORKERS, left = JOBS;
    while (left > 0) {
      assert.ok(
        performance.now() - began < DEADLINE_MS,
        `${left} jobs left after ${DEADLINE_MS} ms`,
      );
      await sleep(between(100, 600));
      // Kill one live worker at a random moment of its life.
      const live = workers.filter((w): w is Child =>
        w !== null && w.process.exitCode === null &&
        w.process.signalCode === null
      );
      if (live.length > 0 && kills < KILLS) {
        live[between(0, live.length - 1)].process.kill("SIGKILL");
        kills++;
      }
      left = (await tally(sql, schema)).left;
      // Restart the workers that died or finished while jobs are left.
      for (let slot = 0; slot < WORKERS; slot++) {
        const w = workers[slot]!;
        if (w.process.exitCode === null && w.process.signalCode === null) {
          continue;
        }
        await w.exited;
        exited.push(w);
        if (left > 0) {
          start(slot);
          starts++;
        } else {
          workers[slot] = null;
        }
      }
    }
    // Burst workers exit once nothing is left.
    const codes = await Promise.all(
      workers.filter((w) => w !== null).map((w) => w!.exited),
    );
    for (const w of workers) if (w) exited.push(w);
    const seconds = (performance.now() - began) / 1000;
    console.log(
      `  kill -9: ${JOBS} jobs, ${WORKERS} processes, ${kills} kills, ` +
        `${starts} starts, ${seconds.toFixed(1)} s`,
    );
    assert.ok(codes.every((c) => c === 0), `exit codes ${codes}`);
    assert.ok(kills >= 5, `only ${kills} kills: the run was too short`);
    assert.deepEqual(exited.flatMap(workerFailures), []);
    await assertExactlyOnce(sql, schema, ids);
  } finally {
    for (const w of workers) w?.process.kill("SIGKILL");
    await Promise.all(workers.map((w) => w?.exited));
    await t.close();
  }
});
