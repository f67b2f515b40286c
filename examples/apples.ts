/**
 * The pq demo: `deno task demo`.
 *
 * Creates the table, puts apples (some delayed, some with priority), takes
 * them in order as they become ready, and shows that a failed transaction
 * puts its job back. Uses DATABASE_URL, or a throwaway PostgreSQL.
 *
 * @module
 */

import postgres from "postgres";
import { createPQ } from "../mod.ts";
import { demoDatabase } from "./_database.ts";

const database = await demoDatabase();
const sql = postgres(database.url, { onnotice: () => {} });
const pq = createPQ(sql, { table: "demo_queue" });
const start = performance.now();
const log = (text: string) =>
  console.log(`${((performance.now() - start) / 1000).toFixed(2)}s  ${text}`);

try {
  await pq.create();
  await sql`create table if not exists demo_eaten (kind text, eaten_at timestamptz default now())`;
  const apples = pq.queue<{ kind: string }>("apples");
  await apples.clear();

  log(
    "put Cox (now), Fuji (in 2 s), Gala (expected in 1 h) and Braeburn (expected in 10 min)",
  );
  await apples.put({ kind: "Cox" });
  await apples.put({ kind: "Fuji" }, { scheduleAt: "2s" });
  await apples.put({ kind: "Gala" }, { expectedAt: "1h" });
  await apples.put({ kind: "Braeburn" }, { expectedAt: "10m" });
  log(`ready now: ${await apples.size()} (Fuji waits)`);

  log(
    "take them: priorities first (Braeburn, Gala), then Cox, then Fuji when it comes due",
  );
  for await (const job of apples.iterate({ timeout: "3s" })) {
    if (job === null) break; // nothing for 3 s: stop
    log(`took ${job.data.kind.padEnd(8)} ${job}`);
  }

  log(
    "a transaction that eats an apple commits the eating and the take together",
  );
  await apples.put({ kind: "Jonagold" });
  await apples.transaction(async (q, tx) => {
    const job = await q.get();
    if (job) await tx`insert into demo_eaten (kind) values (${job.data.kind})`;
  });
  const [{ count }] = await sql`select count(*)::int from demo_eaten`;
  log(
    `eaten apples in the table: ${count}, queue size: ${await apples.size()}`,
  );

  log("a transaction that throws puts its apple back");
  await apples.put({ kind: "Elstar" });
  try {
    await apples.transaction(async (q) => {
      const job = await q.get();
      log(`  took ${job?.data.kind}, then the work fails`);
      throw new Error("worm found");
    });
  } catch (error) {
    log(`  transaction rolled back: ${(error as Error).message}`);
  }
  log(`queue size: ${await apples.size()} (Elstar is back)`);
  log(`took ${(await apples.get())?.data.kind} again`);
} finally {
  await pq.close();
  await sql.end();
  await database.stop();
}
log("done");
