/**
 * Fault: pq's backends are killed (`pg_terminate_backend`) twice a second
 * while producers put at a steady rate and a worker runs the jobs, and new
 * connections are killed too, often during the type lookup postgres.js
 * sends on each (issue 18). postgres.js 3.4.9 then let its reconnect
 * backoff grow without end (`src/reconnect_backoff.ts`): the worker's pool
 * or the producers' waited 10 to 20 s per reconnect, and the process
 * completed nothing meanwhile. Asserted: no second without a completion or
 * an acknowledged put, and every acknowledged job's effect exactly once.
 *
 * Sizes: PQ_FAULT_KILL_SECONDS (default 20), PQ_FAULT_KILL_RATE (jobs/s,
 * default 150: single puts wait for NOTIFY's commit lock, about 250 commits
 * per second on the 2-core CI machine).
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import postgres from "postgres";
import { createPQ } from "../../mod.ts";
import { databaseUrl } from "../_db.ts";
import { openTestPQ, sleep } from "../_pq.ts";
import { createEffects, envNumber, waitFor } from "./_fault.ts";

const SECONDS = envNumber("PQ_FAULT_KILL_SECONDS", 30);
const RATE = envNumber("PQ_FAULT_KILL_RATE", 250);
const KILLS_PER_SECOND = 2;
const WORKER_APP = "pq fault kill worker";
const PRODUCER_APP = "pq fault kill producer";

/**
 * postgres.js 3.4.9 drops the promise of its type lookup on a new
 * connection (porsager/postgres#1192): killing that connection is an
 * unhandled rejection, which would end the test process. Counted instead.
 */
function catchDriverRejections(): { count: number; stop(): void } {
  const state = { count: 0, stop: () => {} };
  const isDriver = (reason: unknown) => {
    const code = (reason as { code?: unknown } | null)?.code;
    return code === "57P01" || code === "ECONNRESET" ||
      code === "CONNECTION_DESTROYED" || code === "CONNECTION_CLOSED";
  };
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") {
    const listener = (e: PromiseRejectionEvent) => {
      if (!isDriver(e.reason)) return;
      e.preventDefault();
      state.count++;
    };
    // The same error also surfaces as an uncaught one, from the socket's
    // data handler, when the connection is killed mid-startup.
    const onError = (e: ErrorEvent) => {
      if (!isDriver(e.error)) return;
      e.preventDefault();
      state.count++;
    };
    // And as an uncaught exception of Deno's node:net (a socket reset).
    const onUncaught = (error: unknown) => {
      if (!isDriver(error)) throw error;
      state.count++;
    };
    globalThis.addEventListener("unhandledrejection", listener);
    globalThis.addEventListener("error", onError);
    process.on("uncaughtException", onUncaught);
    state.stop = () => {
      globalThis.removeEventListener("unhandledrejection", listener);
      globalThis.removeEventListener("error", onError);
      process.off("uncaughtException", onUncaught);
    };
  } else {
    const listener = (reason: unknown) => {
      if (!isDriver(reason)) throw reason;
      state.count++;
    };
    process.on("unhandledRejection", listener);
    state.stop = () => process.off("unhandledRejection", listener);
  }
  return state;
}

/**
 * Opt-in (PQ_FAULT_BACKEND_KILL=1): postgres.js 3.4.9 sometimes lets the
 * error of a connection killed during its startup escape as an uncaught
 * exception that Deno's test runner counts against the test before any
 * handler sees it (porsager/postgres#1192), so the run fails about one time
 * in three for a reason outside pq. RELIABILITY.md has its figures.
 */
const OPT_IN = process.env.PQ_FAULT_BACKEND_KILL === "1";

test(
  `killing pq's backends twice a second for ${SECONDS} s at ${RATE} jobs/s: no stall of a second, nothing lost`,
  {
    skip: OPT_IN
      ? false
      : "set PQ_FAULT_BACKEND_KILL=1 (the driver's uncaught startup errors make it flaky; see the comment above)",
  },
  async () => {
    const t = await openTestPQ("fault_kill", { max: 2 });
    const schema = t.scratch.schema;
    const url = databaseUrl();
    const rejections = catchDriverRejections();
    const workerSql = postgres(url, {
      max: 9,
      onnotice: () => {},
      connection: { application_name: WORKER_APP },
    });
    const producerSql = postgres(url, {
      max: 3,
      onnotice: () => {},
      connection: { application_name: PRODUCER_APP },
    });
    const workerPQ = createPQ(workerSql, { schema });
    const producerPQ = createPQ(producerSql, { schema });
    const stop = new AbortController();
    let stopped = false;
    let working: Promise<unknown> = Promise.resolve();
    let producing: Promise<void> = Promise.resolve();
    let killing: Promise<void> = Promise.resolve();
    try {
      await createEffects(t.sql, schema);
      const effects = `"${schema}".effects`;
      const q = workerPQ.queue("kill");
      q.task("record", async (n: number, job) => {
        await job.tx.unsafe(
          `insert into ${effects} (job_id, attempt, arg) values ($1, $2, $3)`,
          [job.id, job.attempt, n],
        );
      });
      const record = producerPQ.queue("kill").task("record", (_: number) => {});
      let lastDone = performance.now(), lastPut = performance.now();
      let worstDoneGap = 0, worstPutGap = 0, done = 0, workerErrors = 0;
      working = q.work({
        concurrency: 8,
        signal: stop.signal,
        onEvent: (e) => {
          if (e.type === "success") {
            const now = performance.now();
            if (!stopped) worstDoneGap = Math.max(worstDoneGap, now - lastDone);
            lastDone = now;
            done++;
          } else if (e.type === "error") workerErrors++;
        },
      });

      // Producer: an open loop at RATE, at most 50 puts under way.
      const acked: number[] = [];
      let failed = 0, inFlight = 0;
      const began = performance.now();
      producing = (async () => {
        let issued = 0;
        while (!stopped) {
          const due = Math.floor(((performance.now() - began) / 1000) * RATE);
          while (issued < due && inFlight < 50) {
            const n = issued++;
            inFlight++;
            record(n).then(
              () => {
                const now = performance.now();
                if (!stopped) {
                  worstPutGap = Math.max(worstPutGap, now - lastPut);
                }
                lastPut = now;
                acked.push(n);
              },
              () => failed++,
            ).finally(() => inFlight--);
          }
          await sleep(5);
        }
        while (inFlight > 0) await sleep(10);
      })();

      // Killer: every 100 ms, look at our backends; twice a second kill one,
      // one that appeared since the last look first (a connection being
      // opened, maybe in its type lookup).
      const admin = t.sql;
      const kills = { all: 0, fresh: 0 };
      killing = (async () => {
        const seen = new Set<number>();
        let tokens = 0, last = performance.now();
        while (!stopped) {
          await sleep(100);
          const now = performance.now();
          tokens = Math.min(
            1,
            tokens + ((now - last) / 1000) * KILLS_PER_SECOND,
          );
          last = now;
          const rows = await admin`select pid from pg_stat_activity
          where application_name in (${WORKER_APP}, ${PRODUCER_APP})`;
          const pids = rows.map((r) => r.pid as number);
          const fresh = pids.filter((pid) => !seen.has(pid));
          for (const pid of pids) seen.add(pid);
          if (tokens < 1 || pids.length === 0) continue;
          const pool = fresh.length ? fresh : pids;
          const pid = pool[Math.floor(Math.random() * pool.length)];
          const [row] = await admin`select pg_terminate_backend(${pid}) as ok`;
          if (row.ok) {
            tokens -= 1;
            kills.all++;
            if (fresh.length) kills.fresh++;
          }
        }
      })();

      const retries = (sql: postgres.Sql) =>
        (sql.options as unknown as { shared: { retries: number } }).shared
          .retries;
      let mostRetries = 0;
      for (let s = 0; s < SECONDS * 10; s++) {
        await sleep(100);
        mostRetries = Math.max(
          mostRetries,
          retries(workerSql),
          retries(producerSql),
        );
      }
      // The gaps count until now, even if nothing came since the last event.
      const end = performance.now();
      worstDoneGap = Math.max(worstDoneGap, end - lastDone);
      worstPutGap = Math.max(worstPutGap, end - lastPut);
      stopped = true;
      await killing;
      await producing;

      const ackedSet = new Set(acked);
      await waitFor(
        async () => {
          const [row] = await admin.unsafe(
            `select (select count(*)::int from "${schema}".queue) as left,
            (select count(distinct arg)::int from ${effects}) as args`,
          );
          return row.left === 0 && row.args >= acked.length ? row : null;
        },
        "every acknowledged job to be done",
        60_000,
        200,
      );
      stop.abort();
      await working;
      const [{ doubled }] = await admin.unsafe(
        `select count(*)::int as doubled from (select arg from ${effects}
        group by arg having count(*) > 1) as d`,
      );
      const args = await admin.unsafe(`select distinct arg from ${effects}`);
      const missing = acked.filter((n) =>
        !args.some((r) => Number(r.arg) === n)
      );
      const strays = args.filter((r) => !ackedSet.has(Number(r.arg))).length;
      console.log(
        `  backend kill: ${kills.all} backends killed (${kills.fresh} new ones), ${acked.length} puts acknowledged, ${failed} failed (${strays} of those committed anyway), ${done} completions, ${workerErrors} worker errors recovered, ${rejections.count} driver rejections caught, the driver's reconnect retries up to ${mostRetries}; longest time without a completion ${
          Math.round(worstDoneGap)
        } ms, without an acknowledged put ${Math.round(worstPutGap)} ms`,
      );
      assert.equal(doubled, 0, "no job's effect is written twice");
      assert.deepEqual(missing, [], "every acknowledged job's effect exists");
      assert.ok(strays <= failed, "effects only of jobs put");
      assert.ok(kills.all >= SECONDS, `only ${kills.all} kills`);
      assert.ok(
        worstDoneGap < 1_000,
        `the worker completed nothing for ${Math.round(worstDoneGap)} ms`,
      );
      assert.ok(
        worstPutGap < 1_000,
        `no put was acknowledged for ${Math.round(worstPutGap)} ms`,
      );
    } finally {
      stopped = true;
      stop.abort();
      await Promise.allSettled([killing, producing, working]);
      await producerPQ.close();
      await workerPQ.close();
      await producerSql.end({ timeout: 1 });
      await workerSql.end({ timeout: 1 });
      await t.close();
      rejections.stop();
    }
  },
);
