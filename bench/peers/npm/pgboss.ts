/**
 * pg-boss, with the calls its docs give for speed: `send()` for one job,
 * `insert()` for many, and `work()` with `localConcurrency` workers that
 * each fetch and complete a batch per round trip, fetching again at once
 * while batches come back full (`burstWhenBatchFull`). Pickup uses its
 * LISTEN/NOTIFY fast path (`useListenNotify` and a `notify: true` queue);
 * without it, an idle worker polls every 2 s. Everything else is left at
 * its defaults (maintenance, instance registry, retries, retention).
 *
 * Type-checked by `deno task check:peers`, not `deno task check`: it needs
 * bench/peers/node_modules (see bench/peers/README.md).
 *
 * @module
 */

import { PgBoss } from "pg-boss";
import type { OpenPeer, Payload } from "../peer.ts";

/** Jobs per fetch and per completion: pq's default batch size. */
const BATCH_SIZE = 32;
const QUEUE = "jobs";

export const open: OpenPeer = async ({ url, schema }) => {
  const boss = new PgBoss({
    connectionString: url,
    schema,
    application_name: new URL(url).searchParams.get("application_name") ??
      undefined,
    useListenNotify: true,
  });
  boss.on("error", (error) => console.error("pg-boss:", error));
  await boss.start();
  await boss.createQueue(QUEUE, { notify: true });
  return {
    put: (data) => boss.send(QUEUE, data),
    putMany: (data) => boss.insert(QUEUE, data.map((d) => ({ data: d }))),
    async work(concurrency, handler) {
      await boss.work<Payload>(QUEUE, {
        localConcurrency: concurrency,
        batchSize: BATCH_SIZE,
        burstWhenBatchFull: true,
      }, (jobs) => {
        for (const job of jobs) handler(job.data);
        return Promise.resolve();
      });
      return { stop: () => boss.offWork(QUEUE, { wait: true }) };
    },
    async pending() {
      const { rows } = await boss.getDb().executeSql(
        `select count(*)::int as n from ${quote(schema)}.job
         where name = $1 and state in ('created', 'retry', 'active')`,
        [QUEUE],
      );
      return rows[0].n as number;
    },
    close: () => boss.stop({ graceful: true }),
  };
};

/** pg-boss's db adapter takes SQL text; the schema is ours, quoted here. */
function quote(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
